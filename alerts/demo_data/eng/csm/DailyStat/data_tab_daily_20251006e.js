tabData = [
 {
  "id": 0,
  "date": "2025-10-06",
  "market": "SSE Northbound",
  "tradingDay": 0,
  "content": []
 },
 {
  "id": 1,
  "date": "2025-10-06",
  "market": "SSE Southbound",
  "tradingDay": 0,
  "content": []
 },
 {
  "id": 2,
  "date": "2025-10-06",
  "market": "SZSE Northbound",
  "tradingDay": 0,
  "content": []
 },
 {
  "id": 3,
  "date": "2025-10-06",
  "market": "SZSE Southbound",
  "tradingDay": 0,
  "content": []
 }
];