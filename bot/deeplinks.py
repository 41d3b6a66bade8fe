"""Deep links (``t.me/<bot>?start=<payload>``) and the inline keyboards that carry them.

A payload is what Telegram hands to ``/start`` when someone opens such a link: at most 64 characters of
``[A-Za-z0-9_-]`` (Telegram's own rule). The bot understands ``watch_<code>``, ``card_<code>`` and
``lang_<en|zh>``; anything else is a plain /start. A forwarded alert keeps its URL buttons (callback buttons act
on the chat they were sent to), so its Watch button is a deep link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import Button

MAX_PAYLOAD = 64
PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ACTIONS = ("watch", "card", "lang")
# The code part: an HK code (digits) or a US ticker, whose "." (BRK.B) is written "-" (not allowed in a payload).
_CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,12}$")


@dataclass(frozen=True)
class StartLink:
    """What a valid /start payload asks for."""

    action: str  # watch, card or lang
    value: str  # a code as the user would type it (01810, BRK.B), or a language (en, zh)


def parse_payload(text: str) -> StartLink | None:
    """The action of a /start payload, or None when it is malformed or unknown (the caller welcomes instead)."""
    if not PAYLOAD_RE.match(text):
        return None
    action, _, value = text.partition("_")
    if action not in ACTIONS or not value:
        return None
    if action == "lang":
        return StartLink("lang", value.lower()) if value.lower() in ("en", "zh") else None
    if not _CODE_RE.match(value):
        return None
    return StartLink(action, value.replace("-", "."))


def payload(action: str, value: str) -> str:
    """The payload for `action` on `value` (a code or a language); ValueError when it cannot be one."""
    text = f"{action}_{value.replace('.', '-')}"
    if parse_payload(text) is None:
        raise ValueError(f"not a valid start payload: {text!r}")
    return text


def start_url(username: str, start: str) -> str:
    """``https://t.me/<username>?start=<payload>``."""
    return f"https://t.me/{username}?start={start}"


def bot_username(bot: Bot) -> str | None:
    """The bot's @username from getMe, or None before the bot was initialised (then no deep links are made)."""
    try:
        return bot.username
    except (RuntimeError, AttributeError):  # PTB: "This Bot instance was not initialized"; stand-in bots
        return None


def watch_button(text: str, code: str) -> Button | None:
    """A Watch deep-link button for `code`, or None when the code cannot be put in a payload."""
    try:
        return Button(text, "", start=payload("watch", code))
    except ValueError:
        return None


def keyboard(buttons: Sequence[Button], username: str | None) -> InlineKeyboardMarkup | None:
    """Callback buttons on the first row, deep-link buttons on a second; deep links need the bot's username."""
    first = [InlineKeyboardButton(b.text, callback_data=b.data) for b in buttons if not b.start]
    second = (
        [InlineKeyboardButton(b.text, url=start_url(username, b.start)) for b in buttons if b.start]
        if username
        else []
    )
    rows = [row for row in (first, second) if row]
    return InlineKeyboardMarkup(rows) if rows else None
