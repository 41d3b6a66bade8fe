"""Message catalogue for the bot's own replies: English and Traditional Chinese (繁體中文)."""

from __future__ import annotations

from typing import Any

CATALOGUE: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "👋 <b>positioning-bot</b> tells you when positioning around your stocks turns unusual: short-selling "
              "spikes, SFC short positions, buybacks, director buys near round numbers, southbound holdings.\n"
              "Start with <code>/watch 1810 700</code>, then /card 1810. /help lists everything.",
        "zh": "👋 <b>positioning-bot</b> 會在你關注的股票出現異常持倉變化時通知你：沽空比率急升、證監會淡倉、"
              "股份回購、董事在整數價位附近增持、南向持股。\n先輸入 <code>/watch 1810 700</code>，再試 /card 1810。"
              "/help 列出所有指令。",
    },
    "watch_added": {"en": "✅ Watching {codes}.", "zh": "✅ 已關注 {codes}。"},
    "watch_already": {"en": "Already watching {codes}.", "zh": "已在關注 {codes}。"},
    "watch_cap": {"en": "⚠️ Your watchlist is full ({cap} stocks); not added: {codes}.",
                  "zh": "⚠️ 關注清單已滿（{cap} 隻）；未加入：{codes}。"},
    "unknown_code": {"en": "❓ I don't know {text}.", "zh": "❓ 找不到 {text}。"},
    "did_you_mean": {"en": " Did you mean {options}?", "zh": " 你是否想找 {options}？"},
    "watch_usage": {"en": "Which stocks? e.g. <code>/watch 1810 700 xiaomi</code>",
                    "zh": "請輸入股票，例如 <code>/watch 1810 700 小米</code>"},
    "unwatch_usage": {"en": "Which stocks? e.g. <code>/unwatch 700</code>",
                      "zh": "請輸入股票，例如 <code>/unwatch 700</code>"},
    "unwatched": {"en": "Removed {codes}.", "zh": "已移除 {codes}。"},
    "not_watching": {"en": "You were not watching {codes}.", "zh": "你沒有關注 {codes}。"},
    "list_empty": {"en": "Your watchlist is empty. Add stocks with <code>/watch 1810</code>.",
                   "zh": "關注清單是空的。用 <code>/watch 1810</code> 加入股票。"},
    "list_header": {"en": "👀 <b>Watching {n}</b>", "zh": "👀 <b>正在關注 {n} 隻</b>"},
    "mute_usage": {"en": "Mute what? e.g. <code>/mute 1810 1d</code> or <code>/mute buyback_filed 1w</code>",
                   "zh": "要靜音甚麼？例如 <code>/mute 1810 1d</code> 或 <code>/mute buyback_filed 1w</code>"},
    "muted": {"en": "🔕 Muted {target} until {until}.", "zh": "🔕 已靜音 {target}，直至 {until}。"},
    "unmuted": {"en": "🔔 {target} is no longer muted.", "zh": "🔔 已取消靜音 {target}。"},
    "not_muted": {"en": "{target} was not muted.", "zh": "{target} 沒有被靜音。"},
    "bad_duration": {"en": "Durations look like 30m, 12h, 1d or 2w (at most 90d).",
                     "zh": "時間格式如 30m、12h、1d 或 2w（最多 90d）。"},
    "quiet_set": {"en": "🌙 Quiet hours {start}–{end} (Hong Kong time): alerts are held and then sent silently.",
                  "zh": "🌙 靜音時段 {start}–{end}（香港時間）：期間的通知會稍後靜音送出。"},
    "quiet_off": {"en": "Quiet hours off.", "zh": "已關閉靜音時段。"},
    "quiet_usage": {"en": "Use <code>/quiet 22:30-07:30</code> or <code>/quiet off</code>.",
                    "zh": "請用 <code>/quiet 22:30-07:30</code> 或 <code>/quiet off</code>。"},
    "digest_on": {"en": "📬 Digest on: one message a day at {time} instead of instant alerts.",
                  "zh": "📬 已開啟每日摘要：每天 {time} 一則訊息，取代即時通知。"},
    "digest_off": {"en": "Digest off: alerts arrive as they happen.", "zh": "已關閉每日摘要：通知會即時送出。"},
    "digest_usage": {"en": "Use <code>/digest on</code> or <code>/digest off</code>.",
                     "zh": "請用 <code>/digest on</code> 或 <code>/digest off</code>。"},
    "lang_set": {"en": "Language: English.", "zh": "語言：繁體中文。"},
    "lang_usage": {"en": "Use <code>/lang en</code> or <code>/lang zh</code>.",
                   "zh": "請用 <code>/lang en</code> 或 <code>/lang zh</code>。"},
    "rate_limited": {"en": "⏳ That's a lot of commands — please wait a minute.",
                     "zh": "⏳ 指令太頻密，請稍等一分鐘。"},
    "admin_only": {"en": "This command is for the bot's operators.", "zh": "此指令只供營運人員使用。"},
    "unknown_command": {"en": "Unknown command {command}. Try /help.", "zh": "沒有 {command} 這個指令。請試 /help。"},
    "text_hint": {"en": "Send a stock code or name for its card (e.g. <code>1810</code>), or /help.",
                  "zh": "輸入股票代號或名稱查看概覽（例如 <code>1810</code>），或輸入 /help。"},
    "too_many_args": {"en": "That's too many arguments (at most {limit}).", "zh": "參數太多了（最多 {limit} 個）。"},
    "too_long": {"en": "That message is too long for me.", "zh": "訊息太長了。"},
    "settings_header": {"en": "⚙️ <b>Settings</b> — tap to change", "zh": "⚙️ <b>設定</b> — 點選更改"},
    "button_expired": {"en": "This button has expired.", "zh": "此按鈕已失效。"},
    "chart_soon": {"en": "Charts are on their way.", "zh": "圖表即將推出。"},
    "status_header": {"en": "🩺 <b>Data status</b>", "zh": "🩺 <b>數據狀態</b>"},
    "status_never": {"en": "never fetched", "zh": "未曾取得"},
    "broadcast_usage": {"en": "Use <code>/broadcast your text</code>.", "zh": "請用 <code>/broadcast 內容</code>。"},
    "broadcast_queued": {"en": "Queued for {n} chats.", "zh": "已排程發送給 {n} 個聊天。"},
    "error_generic": {"en": "Sorry, something went wrong; the operators have been told.",
                      "zh": "抱歉，出現錯誤；已通知營運人員。"},
}


def t(lang: str, key: str, **values: Any) -> str:
    """Look up `key` in `lang` (falls back to English) and fill in `values`."""
    entry = CATALOGUE[key]
    return entry.get(lang, entry["en"]).format(**values)
