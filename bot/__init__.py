"""Telegram side of positioning-bot: commands, rendering, delivery, and the command-line entry point."""

import os

# Have python-telegram-bot report retry_after as a timedelta (its future default). Without this, PTB 22 reads its
# own deprecated int property while building RetryAfter and emits a deprecation warning on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "1")
