"""Redis-backed storage: every key and TTL lives in `alerts.store.keys`."""
