"""Telegram HTML plumbing: escaping, Telegram's length limits, cutting and splitting, and the console form.

Nothing here knows about alerts or commands: bot.render, bot.answers, the handlers and the delivery worker build
their messages on these helpers.
"""

from __future__ import annotations

import html
import re

MAX_TEXT = 4096  # Telegram's limit for a message's text
# Telegram's limit for a photo caption, counted after HTML parsing; callers count the markup too, which is stricter.
MAX_CAPTION = 1024


def esc(value: object) -> str:
    """Escape a dynamic value for Telegram HTML."""
    return html.escape(str(value), quote=True)


def clip(text: str, limit: int) -> str:
    """Cut escaped HTML text to `limit` characters outside entities, marking the cut."""
    return text if len(text) <= limit else text[: safe_cut(text, limit - 1)] + "…"


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split HTML text at blank lines / line ends (never inside a tag or entity) into parts ≤ `limit`."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(line) > limit:  # a single over-long line: cut outside tags and entities
            cut = safe_cut(line, limit)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        parts.append(current)
    return parts


def safe_cut(line: str, limit: int) -> int:
    """The largest cut ≤ `limit` that falls outside a tag and an entity (at least 1, so cutting always advances)."""
    cut = limit
    opened_tag, opened_entity = line.rfind("<", 0, cut), line.rfind("&", 0, cut)
    if opened_tag > line.rfind(">", 0, cut):
        cut = opened_tag
    if opened_entity > line.rfind(";", 0, cut):
        cut = min(cut, opened_entity)
    return max(cut, 1)


_TAG = re.compile(r"<(/?)(b|i|a)(?:\s+href=\"([^\"]*)\")?>")


def to_console(html_text: str, *, color: bool = False) -> str:
    """Turn Telegram HTML into terminal text: bold/italic via ANSI when `color`, links as 'text <url>'."""
    links: list[str] = []

    def tag(match: re.Match[str]) -> str:
        closing, name, href = match.groups()
        if name == "a":
            if closing:
                return f" <{links.pop()}>" if links else ""
            links.append(html.unescape(href or ""))
            return ""
        if not color:
            return ""
        return "\033[0m" if closing else ("\033[1m" if name == "b" else "\033[3m")

    return html.unescape(_TAG.sub(tag, html_text))
