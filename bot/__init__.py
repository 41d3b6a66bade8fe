"""Telegram side of positioning-bot: commands, rendering, delivery, and the command-line entry point."""
