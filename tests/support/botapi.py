"""A local HTTP stand-in of the Telegram Bot API, so tests drive the real python-telegram-bot over HTTP.

Point PTB at it with `base_url(api.base_url)` / `base_file_url(api.base_file_url)`. It answers like Telegram
({"ok": true, "result": ...} or {"ok": false, "error_code": ..., "description": ...}), validates text the way
Telegram's parser (tdlib MessageEntity.cpp) does, and can be scripted to block, migrate, fail, hang or rate-limit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_USERNAME = "positioning_test_bot"
BOT_FIRST_NAME = "Positioning Test Bot"
MAX_TEXT = 4096  # Unicode code points after entity parsing (tdlib: utf8_length > message_text_length_max)
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_ANSWER_TEXT = 200
MAX_PHOTO_SIDES = 10000  # width + height

# Update types Telegram leaves out unless allowed_updates names them explicitly.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "commands",
        "scope",
        "media",
        "results",
        "button",
    }
)
INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "message_thread_id",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
    }
)
BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "has_spoiler",
        "allow_sending_without_reply",
        "show_caption_above_media",
        "allow_paid_broadcast",
        "is_personal",
    }
)
BUTTON_ACTIONS = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
SEND_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument"})
MAX_INLINE_RESULTS = 50
MAX_RESULT_ID = 64  # bytes
THREAD_NOT_FOUND = "Bad Request: message thread not found"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
_MEMBER_RIGHTS = (
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_send_messages",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_manage_topics",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_edit_tag",
)
# The fields each ChatMember kind carries besides status and user (Bot API ChatMemberOwner, ...Administrator, ...).
MEMBER_STATUSES: dict[str, dict[str, Any]] = {
    "creator": {"is_anonymous": False},
    "administrator": {"can_be_edited": False, "is_anonymous": False, **dict.fromkeys(_ADMIN_RIGHTS, True)},
    "member": {},
    "restricted": {"is_member": True, "until_date": 0, **dict.fromkeys(_MEMBER_RIGHTS, False)},
    "left": {},
    "kicked": {"until_date": 0},
}


class _Server(ThreadingHTTPServer):
    # The bot serves chats concurrently: dozens of connections may open at once, more than the default listen
    # backlog of 5 holds (the surplus would be reset, which Telegram's front end never does).
    request_queue_size = 256


class ApiError(Exception):
    """An answer with ok=false: HTTP status, Telegram's description and optional response parameters."""

    def __init__(
        self,
        status: int,
        description: str,
        parameters: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters
        self.body = body  # answered as is (text/html) instead of the JSON error, like a proxy's error page


class MarkupError(ValueError):
    """Text that Telegram's entity parser refuses; str() is the reason after "can't parse entities: "."""


@dataclass(frozen=True)
class Upload:
    """A file part received in a multipart/form-data request."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass
class Call:
    """One Bot API request the stand-in received and how it answered."""

    method: str
    params: dict[str, Any]
    chat_id: int | str | None
    time: float  # time.monotonic() when the request arrived
    token: str = ""
    status: int = 200
    description: str | None = None
    result: Any = None

    @property
    def ok(self) -> bool:
        """Whether the request was accepted."""
        return self.status == 200


@dataclass
class _Failure:
    method: str  # lower-case method name or "*"
    status: int
    description: str | None
    retry_after: int | None
    chat_id: int | str | None
    times: int
    body: bytes | None = None


@dataclass
class _Delay:
    method: str
    seconds: float
    times: int


Entity = tuple[str, int, int, str]  # (type, offset, length, argument) in code points


# --------------------------------------------------------------------------------------------- markup parsing


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _is_space(char: str) -> bool:
    return char in " \t\r\n\v\f"


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """tdlib's decode_html_entity: &lt; &gt; &amp; &quot; and numeric references (';' optional)."""
    end = pos + 1
    if text.startswith("&#", pos):
        end += 1
        hexadecimal = text.startswith("x", end)
        end += hexadecimal
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start = end
        while end < len(text) and text[end] in digits:
            end += 1
        if end == start or end - pos >= 10:
            return None
        code = int(text[start:end], 16 if hexadecimal else 10)
        if code == 0 or code >= 0x10FFFF:
            return None
        char = chr(code)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        char = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end], "")
        if not char:
            return None
    return char, end + 1 if text.startswith(";", end) else end


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _html_amp(text: str, i: int, strict: bool) -> tuple[str, int]:
    decoded = _decode_html_entity(text, i)
    if decoded is not None:
        return decoded
    if strict:
        raise MarkupError(f"Unsupported HTML entity at byte offset {_byte_offset(text, i)}")
    return "&", i + 1  # what Telegram itself does with a bare '&'


def _html_attr_value(text: str, i: int, begin: int, strict: bool) -> tuple[str, int]:
    n = len(text)
    if text[i] not in "'\"":
        # A name token (letters, digits, periods, hyphens); not case sensitive.
        start = i
        while i < n and (text[i].isascii() and text[i].isalnum() or text[i] in ".-"):
            i += 1
        if i < n and not _is_space(text[i]) and text[i] != ">":
            raise MarkupError(f"Unexpected end of name token at byte offset {_byte_offset(text, start)}")
        return text[start:i].lower(), i
    quote, value = text[i], []
    i += 1
    while i < n and text[i] != quote:
        if text[i] == "&":
            char, i = _html_amp(text, i, strict)
            value.append(char)
            continue
        value.append(text[i])
        i += 1
    if i >= n:
        raise MarkupError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    return "".join(value), i + 1


def _html_start_tag(text: str, begin: int, strict: bool) -> tuple[str, str, int]:
    """Parse `<tag attr=...>` starting at `begin`; returns (tag, argument, index after '>')."""
    n, i = len(text), begin + 1
    while i < n and not _is_space(text[i]) and text[i] != ">":
        i += 1
    if i >= n:
        raise MarkupError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    tag = text[begin + 1 : i].lower()
    if tag not in _HTML_TAGS:
        raise MarkupError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
    argument = ""
    while i < n and text[i] != ">":
        while i < n and _is_space(text[i]):
            i += 1
        if i >= n or text[i] == ">":
            break
        name_start = i
        while i < n and not _is_space(text[i]) and text[i] not in "=>":
            i += 1
        name = text[name_start:i]
        while i < n and _is_space(text[i]):
            i += 1
        if i >= n:
            raise MarkupError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        if text[i] != "=":
            if tag == "blockquote" and name == "expandable":
                argument = "expandable"
                continue
            raise MarkupError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(text, begin)}"
            )
        i += 1
        while i < n and _is_space(text[i]):
            i += 1
        if i >= n:
            raise MarkupError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        value, i = _html_attr_value(text, i, begin, strict)
        argument = _html_argument(tag, name, value, argument)
    if i >= n:
        raise MarkupError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    if tag == "span" and argument != "spoiler":
        raise MarkupError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
        )
    return tag, argument, i + 1


def _html_argument(tag: str, name: str, value: str, current: str) -> str:
    if tag == "a" and name == "href":
        return value
    if tag == "code" and name == "class" and value.startswith("language-"):
        return value.removeprefix("language-")
    if tag == "span" and name == "class" and value.startswith("tg-"):
        return value.removeprefix("tg-")
    if tag == "tg-emoji" and name == "emoji-id":
        return value
    return current


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[Entity]]:
    """Plain text and entities of Telegram HTML; raises MarkupError with Telegram's reason.

    strict_entities: refuse a '&' that starts no entity (Telegram shows it literally; escaping it is the
    safe habit, so the stand-in is stricter by default).
    """
    out: list[str] = []
    size = 0
    entities: list[Entity] = []
    stack: list[tuple[str, str, int]] = []  # (tag, argument, plain offset where it opened)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded, i = _html_amp(text, i, strict_entities)
            out.append(decoded)
            size += len(decoded)
            continue
        if char != "<":
            out.append(char)
            size += 1
            i += 1
            continue
        if not text.startswith("</", i):
            tag, argument, i = _html_start_tag(text, i, strict_entities)
            stack.append((tag, argument, size))
            continue
        i = _html_end_tag(text, i, stack, entities, size, "".join(out))
    if stack:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), sorted(entities, key=lambda e: (e[1], -e[2]))


def _html_end_tag(
    text: str, begin: int, stack: list[tuple[str, str, int]], entities: list[Entity], size: int, plain: str
) -> int:
    n = len(text)
    if not stack:
        raise MarkupError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    i = begin + 2
    while i < n and not _is_space(text[i]) and text[i] != ">":
        i += 1
    end_name = text[begin + 2 : i]
    while i < n and _is_space(text[i]):
        i += 1
    if i >= n or text[i] != ">":
        raise MarkupError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    tag, argument, offset = stack.pop()
    if end_name and end_name != tag:
        raise MarkupError(
            f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, expected "</{tag}>", '
            f'found "</{end_name}>"'
        )
    kind = _HTML_TYPES[tag]
    if tag == "tg-emoji" and not (argument.isdigit() and int(argument) > 0):
        raise MarkupError("Invalid custom emoji identifier specified")
    if tag == "a" and not argument:
        argument = plain[offset:]
    if tag == "blockquote" and argument:
        kind = "expandable_blockquote"
    if size > offset:
        entities.append((kind, offset, size - offset, argument))
    return i + 1


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_CODE = frozenset({"Code", "Pre", "PreCode"})


def _mdv2_closes(kind: str, text: str, i: int) -> bool:
    char, following = text[i], text[i + 1 : i + 2]
    return {
        "Bold": char == "*",
        "Italic": char == "_" and following != "_",
        "Underline": char == "_" and following == "_",
        "Strikethrough": char == "~",
        "Spoiler": char == "|" and following == "|",
        "Code": char == "`",
        "Pre": text.startswith("```", i),
        "PreCode": text.startswith("```", i),
        "TextUrl": char == "]",
        "CustomEmoji": char == "]",
    }[kind]


def _mdv2_open(text: str, i: int) -> tuple[str, str, int]:
    """Entity opened by the reserved character at i: (type, argument, index after the marker)."""
    char, following = text[i], text[i + 1 : i + 2]
    simple = {"*": "Bold", "~": "Strikethrough", "[": "TextUrl"}
    if char in simple:
        return simple[char], "", i + 1
    if char == "_":
        return ("Underline", "", i + 2) if following == "_" else ("Italic", "", i + 1)
    if char == "|" and following == "|":
        return "Spoiler", "", i + 2
    if char == "!" and following == "[":
        return "CustomEmoji", "", i + 2
    if char == "`" and not text.startswith("```", i):
        return "Code", "", i + 1
    if char == "`":
        i += 3
        end = i
        while end < len(text) and not _is_space(text[end]) and text[end] != "`":
            end += 1
        kind, language = "Pre", ""
        if end != i and end < len(text) and text[end] != "`":
            kind, language, i = "PreCode", text[i:end], end
        if text.startswith(("\r\n", "\n\r"), i):
            i += 2
        elif text.startswith(("\n", "\r"), i):
            i += 1
        return kind, language, i
    raise MarkupError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")


def _mdv2_url(text: str, i: int) -> tuple[str, int]:
    """Read `(url)` starting at the '(' at i; returns (url, index after ')')."""
    i += 1
    start, url = i, []
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            url.append(text[i + 1])
            i += 2
            continue
        url.append(text[i])
        i += 1
    if i >= len(text):
        raise MarkupError(f"Can't find end of a URL at byte offset {_byte_offset(text, start)}")
    return "".join(url), i + 1


def _mdv2_close(kind: str, text: str, i: int, plain: str, offset: int) -> tuple[str, int]:
    """Consume the closing marker at i; returns (argument, next index)."""
    if kind in ("Underline", "Spoiler"):
        return "", i + 2
    if kind in ("Pre", "PreCode"):
        return "", i + 3
    if kind == "TextUrl":
        if text.startswith("(", i + 1):
            return _mdv2_url(text, i + 1)
        return plain[offset:], i + 1
    if kind == "CustomEmoji":
        url, after = _mdv2_url(text, i + 1) if text.startswith("(", i + 1) else ("", i + 1)
        if not re.fullmatch(r"tg://emoji\?id=[1-9]\d*", url):
            raise MarkupError("Custom emoji entity must contain a tg://emoji URL")
        return url.rpartition("=")[2], after
    return "", i + 1


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """Plain text and entities of Telegram MarkdownV2; raises MarkupError with Telegram's reason."""
    out: list[str] = []
    entities: list[Entity] = []
    stack: list[tuple[str, str, int, int]] = []  # (type, argument, plain offset, source index)
    quote_line = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            i += 2
            continue
        in_code = bool(stack) and stack[-1][0] in _MDV2_CODE
        if not in_code and (i == 0 or text[i - 1] == "\n"):
            quote_line = text.startswith((">", "**>"), i)
            if quote_line:
                i += 3 if char == "*" else 1
                continue
        if char not in ("`" if in_code else _MDV2_RESERVED):
            out.append(char)
            i += 1
            continue
        if (
            quote_line
            and text.startswith("||", i)
            and text[i + 2 : i + 3] in ("", "\n")
            and not (stack and stack[-1][0] == "Spoiler")
        ):
            i += 2  # end of an expandable block quotation
            continue
        size = len(out)  # one code point per element
        if stack and _mdv2_closes(stack[-1][0], text, i):
            kind, _, offset, _ = stack.pop()
            argument, i = _mdv2_close(kind, text, i, "".join(out), offset)
            if size > offset:
                entities.append((kind, offset, size - offset, argument))
            continue
        kind, argument, after = _mdv2_open(text, i)
        stack.append((kind, argument, size, i))
        i = after
    if stack:
        kind, _, _, begin = stack[-1]
        raise MarkupError(f"Can't find end of {kind} entity at byte offset {_byte_offset(text, begin)}")
    return "".join(out), sorted(entities, key=lambda e: (e[1], -e[2]))


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    """Plain text and entities of legacy Markdown (v1); raises MarkupError with Telegram's reason."""
    out: list[str] = []
    entities: list[Entity] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
            out.append(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            i += 1
            continue
        marker = "```" if text.startswith("```", i) else "]" if char == "[" else char
        start = i + (3 if marker == "```" else 1)
        end = text.find(marker, start)
        if end < 0:
            raise MarkupError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}")
        inner = text[start:end]
        offset = sum(map(len, out))
        i = end + len(marker)
        argument = ""
        if char == "[" and text.startswith("(", i) and ")" in text[i:]:
            close = text.index(")", i)
            argument, i = text[i + 1 : close], close + 1
        kind = {"_": "italic", "*": "bold", "`": "pre" if marker == "```" else "code", "[": "text_link"}[char]
        out.append(inner)
        if inner:
            entities.append((kind, offset, len(inner), argument))
    return "".join(out), entities


def parse_text(
    text: str, parse_mode: str | None, *, strict_entities: bool = True
) -> tuple[str, list[Entity]]:
    """Apply `parse_mode` like Telegram; raises ApiError(400) with Telegram's description."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    parser: Callable[[str], tuple[str, list[Entity]]]
    if mode == "html":

        def parser(value: str) -> tuple[str, list[Entity]]:
            return parse_html(value, strict_entities=strict_entities)
    elif mode == "markdownv2":
        parser = parse_markdown_v2
    elif mode == "markdown":
        parser = parse_markdown
    else:
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    try:
        return parser(text)
    except MarkupError as err:
        raise ApiError(400, f"Bad Request: can't parse entities: {err}") from None


# --------------------------------------------------------------------------------------------- request decoding


def coerce(name: str, value: Any) -> Any:
    """Turn a form/multipart string into what Telegram reads it as (PTB JSON-encodes non-strings)."""
    if not isinstance(value, str):
        return value
    if name in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in INT_FIELDS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if name in BOOL_FIELDS and value in ("true", "false"):
        return value == "true"
    return value


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ApiError(400, "Bad Request: can't parse multipart/form-data request")
    params: dict[str, Any] = {}
    for part in body.split(b"--" + match.group(1).encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', headers)
        if name is None:
            continue
        filename = re.search(r'\bfilename="([^"]*)"', headers)
        ctype = re.search(r"(?im)^content-type:\s*(\S+)", headers)
        if filename is not None:
            params[name.group(1)] = Upload(filename.group(1), ctype.group(1) if ctype else "", content)
        else:
            params[name.group(1)] = content.decode("utf-8")
    return params


def decode_params(content_type: str, body: bytes, query: str = "") -> dict[str, Any]:
    """Request parameters from the query string plus a urlencoded, multipart or JSON body."""
    raw: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if body and kind == "application/json":
        try:
            loaded = json.loads(body)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
        if not isinstance(loaded, dict):
            raise ApiError(400, "Bad Request: JSON encoded request must be an object")
        raw.update(loaded)
    elif body and kind == "multipart/form-data":
        raw.update(_multipart(content_type, body))
    elif body:
        raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {name: coerce(name, value) for name, value in raw.items()}


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[dict[str, Any]]:
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}] if match else []


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


# --------------------------------------------------------------------------------------------- the server


class BotApi:
    """Threaded stand-in of api.telegram.org on 127.0.0.1:<free port>; use as a context manager.

    Every request is recorded in `sent` (a list of Call, getUpdates included); the helpers below filter it.
    """

    def __init__(self, *, token: str | None = None) -> None:
        self.token = token  # if set, any other token is answered 401 Unauthorized
        self.tokens: set[str] = set()
        self._last_token = token or ""
        self.sent: list[Call] = []
        self.errors: list[str] = []  # stand-in bugs (answered 500); a test may assert it stays empty
        self.too_many = 0  # 429 answers given
        self.max_poll_wait = 1.0  # cap on getUpdates long polling, seconds
        self.strict_entities = True  # see parse_html
        self.webhook_url = ""
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (scope JSON, language) -> commands
        self.answered: dict[str, dict[str, Any]] = {}  # callback_query_id -> answerCallbackQuery params
        self.inline_answers: dict[str, dict[str, Any]] = {}  # inline_query_id -> answerInlineQuery params
        self.supports_inline = True  # getMe's supports_inline_queries (BotFather /setinline)
        self.rate_limited_methods = set(SEND_METHODS)
        # getChatMember: statuses scripted per (chat, user) with set_member(); anyone else in a group or supergroup
        # answers `default_member_status` (administrator: tests written before the bot checked group admins).
        self.default_member_status = "administrator"
        self._members: dict[tuple[int, int], str] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._waiting_polls = 0
        self._callback_ids = itertools.count(4_382_000_001)
        self._open_queries: set[str] = set()
        self._next_message_id: dict[int, int] = defaultdict(lambda: 1)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._meta: dict[tuple[int, int], tuple[bool, list[Entity]]] = {}  # (from bot, entities)
        self._chat_types: dict[int, str] = {}
        self._usernames: dict[str, int] = {}
        self._blocked: dict[int, str] = {}
        self._migrated: dict[int, int] = {}
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._limits: dict[str, tuple[int, float]] = {}
        self._stamps: dict[tuple[str, int | None], deque[float]] = defaultdict(deque)
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self._inline_ids = itertools.count(5_190_000_001)
        self._open_inline: set[str] = set()
        self._forums: dict[int, set[int]] = {}  # forum supergroup -> its open topics (message_thread_id)
        self._unknown_chats: set[int] = (
            set()
        )  # chats Telegram has never seen (scoped menus answer "chat not found")
        self._handlers: dict[str, Callable[[Call], Any]] = {
            name.lower(): getattr(self, f"_m_{name}")
            for name in (
                "getMe",
                "getUpdates",
                "deleteWebhook",
                "setWebhook",
                "getWebhookInfo",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "sendMessage",
                "editMessageText",
                "editMessageReplyMarkup",
                "answerCallbackQuery",
                "sendPhoto",
                "sendChatAction",
                "getChat",
                "getFile",
                "close",
                "logOut",
                "getChatMember",
                "sendDocument",
                "answerInlineQuery",
            )
        }
        self.server = _Server(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ lifecycle and addresses

    def __enter__(self) -> BotApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What to pass as PTB base_url (PTB appends token + "/" + method)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass as PTB base_file_url."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ scripting

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Refuse every delivery to `chat_id` with 403 (wording by chat type unless given)."""
        default = {
            "private": "Forbidden: bot was blocked by the user",
            "group": "Forbidden: bot was kicked from the group chat",
            "supergroup": "Forbidden: bot was kicked from the supergroup chat",
            "channel": "Forbidden: bot is not a member of the channel chat",
        }[self.chat_type(chat_id)]
        with self._lock:
            self._blocked[chat_id] = description or default

    def unblock(self, chat_id: int) -> None:
        """Undo block()."""
        with self._lock:
            self._blocked.pop(chat_id, None)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group `chat_id` became supergroup `new_chat_id`: deliveries to the old id answer 400."""
        with self._lock:
            self._migrated[chat_id] = new_chat_id
            self._chat_types[new_chat_id] = "supergroup"

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        times: int = 1,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` ("*" = any; optionally only to `chat_id`) with an error.

        429 defaults to "Too Many Requests: retry after N" with parameters.retry_after = N (N defaults to 1);
        502 without a description answers nginx's HTML page, like Telegram's front end does; `body` is answered
        as is (text/html) instead of the JSON error, like a proxy's own error page.
        """
        if status == 429:
            retry_after = retry_after or 1
            description = description or f"Too Many Requests: retry after {retry_after}"
        with self._lock:
            self._failures.append(
                _Failure(method.lower(), status, description, retry_after, chat_id, times, body)
            )

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """Hold the next `times` calls of `method` for `seconds` before handling them (they still take effect)."""
        with self._lock:
            self._delays.append(_Delay(method.lower(), seconds, times))

    def limits(
        self,
        global_per_sec: int | None = 30,
        per_chat_per_sec: int | None = 1,
        group_per_min: int | None = 20,
    ) -> None:
        """Enforce flood limits on accepted sends (sliding windows); None switches a window off."""
        windows = {
            "global": (global_per_sec, 1.0),
            "chat": (per_chat_per_sec, 1.0),
            "group": (group_per_min, 60.0),
        }
        with self._lock:
            self._limits = {name: (int(limit), span) for name, (limit, span) in windows.items() if limit}

    def unknown_chat(self, chat_id: int) -> None:
        """`chat_id` never talked to the bot: a menu scoped to it answers 400 "chat not found"."""
        with self._lock:
            self._unknown_chats.add(chat_id)

    def make_forum(self, chat_id: int) -> None:
        """`chat_id` becomes a supergroup with topics enabled (its General topic has no message_thread_id)."""
        with self._lock:
            self._chat_types[chat_id] = "supergroup"
            self._forums.setdefault(chat_id, set())

    def create_topic(self, chat_id: int) -> int:
        """Open a forum topic in `chat_id` (made a forum if needed); returns its message_thread_id."""
        with self._lock:
            self.make_forum(chat_id)
            thread = self._new_message_id(
                chat_id
            )  # a topic's id is the id of the service message that opened it
            self._forums[chat_id].add(thread)
            return thread

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Delete a forum topic: sends to it answer 400 "message thread not found"."""
        with self._lock:
            self._forums.get(chat_id, set()).discard(thread_id)

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """getChatMember of `user_id` in `chat_id` answers `status` (creator, administrator, member, restricted,
        left, kicked)."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        with self._lock:
            self._members[(chat_id, user_id)] = status

    # ------------------------------------------------------------------ pushing updates

    def push_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update as given (update_id assigned if missing); returns it."""
        with self._changed:
            update = dict(update)
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "en",
        entities: list[dict[str, Any]] | None = None,
        thread_id: int | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user writes `text` in `chat_id` (a leading /command gets its bot_command entity), optionally in forum
        topic `thread_id` and in reply to the message `reply_to` (as push_* returned it)."""
        message = self._user_message(chat_id, text, chat_type, user_id, language_code, entities)
        self._in_thread(message, thread_id)
        if reply_to is not None:
            message["reply_to_message"] = reply_to.get("message", reply_to)
        return self.push_raw({"message": message})

    def push_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        filename: str = "watchlist.csv",
        mime_type: str = "text/csv",
        caption: str | None = None,
        chat_type: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "en",
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user sends a file (kept for getFile and the file download path), with an optional caption."""
        with self._lock:
            file_id = self._keep_file("documents", filename, data)
            message = self._user_message(chat_id, "", chat_type, user_id, language_code, [])
            message.pop("text", None)
            message["document"] = {
                "file_id": file_id,
                "file_unique_id": "AQAD" + file_id[-6:],
                "file_name": filename,
                "mime_type": mime_type,
                "file_size": len(data),
            }
            if caption is not None:
                message["caption"] = caption
                if entities := _command_entities(caption):
                    message["caption_entities"] = entities
            self._in_thread(message, thread_id)
        return self.push_raw({"message": message})

    def push_inline_query(
        self, user_id: int, query: str, *, language_code: str | None = "en", chat_type: str = "private"
    ) -> dict[str, Any]:
        """A user types `@bot <query>` in a chat of `chat_type` (sender, sender's private chat, group…)."""
        with self._lock:
            query_id = str(next(self._inline_ids))
            self._open_inline.add(query_id)
            inline = {
                "id": query_id,
                "from": self._user(user_id, language_code),
                "query": query,
                "offset": "",
                "chat_type": chat_type,
            }
        return self.push_raw({"inline_query": inline})

    def _in_thread(self, message: dict[str, Any], thread_id: int | None) -> None:
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True

    def push_edited_message(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """A user edits their message `message_id` to `text`."""
        message = self._user_message(chat_id, text, chat_type, user_id, language_code, None, message_id)
        message["edit_date"] = int(time.time())
        return self.push_raw({"edited_message": message})

    def push_channel_post(self, chat_id: int, text: str) -> dict[str, Any]:
        """A post appears in channel `chat_id` (the chat is registered as a channel)."""
        with self._lock:
            self._chat_types[chat_id] = "channel"
            chat = self._chat(chat_id)
            post = {
                "message_id": self._new_message_id(chat_id),
                "sender_chat": chat,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if entities := _command_entities(text):  # Telegram marks a leading /command in posts too
                post["entities"] = entities
            self._store(post, from_bot=False, entities=[])
        return self.push_raw({"channel_post": post})

    def push_callback(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        user_id: int | None = None,
        chat_type: str | None = None,
    ) -> dict[str, Any]:
        """A user presses an inline button carrying `data` under the bot's message `message_id`.

        Without message_id, the bot's latest message in the chat is used (one is made up if there is none).
        """
        with self._lock:
            if chat_type:
                self._chat_types[chat_id] = chat_type
            message = self._bot_message_for_callback(chat_id, message_id)
            query_id = str(next(self._callback_ids))
            self._open_queries.add(query_id)
            query = {
                "id": query_id,
                "from": self._user(user_id or self._default_user(chat_id), "en"),
                "chat_instance": str(abs(chat_id) * 7 + 11),
                "message": message,
                "data": data,
            }
        return self.push_raw({"callback_query": query})

    @property
    def long_polls(self) -> int:
        """getUpdates requests currently held open waiting for updates."""
        with self._lock:
            return self._waiting_polls

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._lock:
            return list(self._updates)

    # ------------------------------------------------------------------ reading what happened

    def calls(self, method: str) -> list[Call]:
        """Every recorded call of `method` (case-insensitive), accepted or not."""
        with self._lock:
            return [call for call in self.sent if call.method.lower() == method.lower()]

    def messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Params of accepted sendMessage/sendPhoto calls (optionally to one chat), in arrival order."""
        with self._lock:
            return [
                call.params
                for call in self.sent
                if call.ok
                and call.method.lower() in SEND_METHODS
                and (chat_id is None or call.chat_id == chat_id)
            ]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        """Text or caption of each accepted message, as sent (markup included)."""
        return [params.get("text", params.get("caption", "")) for params in self.messages(chat_id)]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The stand-in's current copy of a message (after edits), as Telegram would return it."""
        with self._lock:
            return self._messages.get((chat_id, message_id))

    def chat_type(self, chat_id: int) -> str:
        """private / group / supergroup / channel, as the stand-in sees `chat_id`."""
        with self._lock:
            if chat_id in self._chat_types:
                return self._chat_types[chat_id]
        if chat_id > 0:
            return "private"
        return "supergroup" if str(chat_id).startswith("-100") else "group"

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Block until predicate() is truthy (re-checked on every request/push); returns its value.

        For threaded callers only: it blocks, so never call it from the event loop running the bot.
        """
        with self._changed:
            value = self._changed.wait_for(predicate, timeout)
        if not value:
            raise AssertionError(f"condition not met within {timeout} s; calls: {self._summary()}")
        return value

    async def await_sent(
        self,
        n: int,
        chat_id: int | str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait (without blocking the loop) until at least `n` messages were accepted; returns them."""
        deadline = time.monotonic() + timeout
        while len(found := self.messages(chat_id)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {n} messages to {chat_id} within {timeout} s; calls: {self._summary()}"
                )
            await asyncio.sleep(0.01)
        return found

    async def until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Await (without blocking the loop) until predicate() is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s; calls: {self._summary()}")
            await asyncio.sleep(0.005)
        return value

    def _summary(self) -> str:
        with self._lock:
            return ", ".join(f"{c.method}->{c.status}" for c in self.sent if c.method.lower() != "getupdates")

    # ------------------------------------------------------------------ HTTP plumbing

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                api._serve(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                api._serve(self, self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        api_call = re.fullmatch(r"/bot([^/]*)/([A-Za-z0-9_]*)/?", parts.path)
        file_get = re.fullmatch(r"/file/bot([^/]*)/(.+)", parts.path)
        if file_get is not None and handler.command == "GET":
            self._serve_file(handler, file_get.group(2))
            return
        if api_call is None:
            self._send_json(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        try:
            params = decode_params(handler.headers.get("Content-Type", ""), body, parts.query)
        except ApiError as err:
            params = {}
            self._record(
                Call(
                    api_call.group(2),
                    params,
                    None,
                    time.monotonic(),
                    api_call.group(1),
                    err.status,
                    err.description,
                )
            )
            self._send_json(
                handler, err.status, {"ok": False, "error_code": err.status, "description": err.description}
            )
            return
        status, payload = self._dispatch(api_call.group(1), api_call.group(2), params)
        if payload is None:
            return  # shutting down during a delay: drop the request
        if isinstance(payload, bytes):
            self._send(handler, status, payload, "text/html")
        else:
            self._send_json(handler, status, payload)

    def _serve_file(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        with self._lock:
            data = next((blob for file_path, blob in self._files.values() if file_path == path), None)
        if data is None:
            self._send_json(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        else:
            self._send(handler, 200, data, "application/octet-stream")

    def _send_json(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        self._send(
            handler, status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        )

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout tests, cancelled long polls)

    def _dispatch(
        self, token: str, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | bytes | None]:
        call = Call(method, params, params.get("chat_id"), time.monotonic(), token)
        with self._lock:
            self.tokens.add(token)
            self._last_token = token
        if not self._wait_scripted_delay(method.lower()):
            return 0, None
        try:
            with self._lock:
                result = self._handle(call)
        except ApiError as err:
            call.status, call.description = err.status, err.description
            self._record(call)
            if err.body is not None:
                return err.status, err.body
            if err.status == 502 and err.description == "":
                return 502, NGINX_502
            payload: dict[str, Any] = {"ok": False, "error_code": err.status, "description": err.description}
            if err.parameters:
                payload["parameters"] = err.parameters
            return err.status, payload
        except Exception as exc:  # a stand-in bug must surface in the test, not hang it
            message = f"Internal Server Error: stand-in failed on {method}: {exc!r}"
            with self._lock:
                self.errors.append(message)
            call.status, call.description = 500, message
            self._record(call)
            return 500, {"ok": False, "error_code": 500, "description": message}
        call.result = result
        self._record(call)
        return 200, {"ok": True, "result": result}

    def _record(self, call: Call) -> None:
        with self._changed:
            self.sent.append(call)
            if call.status == 429:
                self.too_many += 1
            self._changed.notify_all()

    def _wait_scripted_delay(self, method: str) -> bool:
        with self._lock:
            rule = next((d for d in self._delays if d.method in (method, "*") and d.times > 0), None)
            if rule is not None:
                rule.times -= 1
        if rule is None:
            return True
        return not self._closing.wait(rule.seconds)

    def _handle(self, call: Call) -> Any:
        if self.token is not None and call.token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = self._handlers.get(call.method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        self._scripted_failure(call)
        return handler(call)

    def _scripted_failure(self, call: Call) -> None:
        method = call.method.lower()
        for rule in self._failures:
            if rule.times <= 0 or rule.method not in (method, "*"):
                continue
            if rule.chat_id is not None and rule.chat_id != call.chat_id:
                continue
            rule.times -= 1
            description = rule.description
            if description is None:
                description = "" if rule.status == 502 else DEFAULT_DESCRIPTIONS.get(rule.status, "Error")
            parameters = {"retry_after": rule.retry_after} if rule.retry_after else None
            raise ApiError(rule.status, description, parameters, body=rule.body)

    # ------------------------------------------------------------------ chats, users, messages

    def _resolve_chat(self, value: Any) -> int:
        if isinstance(value, bool) or value is None or value == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            if value not in self._usernames:
                self._usernames[value] = -1_001_000_000_000 - len(self._usernames)
                self._chat_types[self._usernames[value]] = "channel"
            return self._usernames[value]
        raise ApiError(400, "Bad Request: chat not found")

    def _chat(self, chat_id: int) -> dict[str, Any]:
        kind = self.chat_type(chat_id)
        if kind == "private":
            return {"id": chat_id, "type": "private", "first_name": "Test", "username": f"user{chat_id}"}
        chat: dict[str, Any] = {"id": chat_id, "type": kind, "title": f"Test {kind} {chat_id}"}
        if chat_id in self._forums:
            chat["is_forum"] = True
        return chat

    @staticmethod
    def _user(user_id: int, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": "Test",
            "last_name": "User",
            "username": f"user{user_id}",
        }
        if language_code:
            user["language_code"] = language_code
        return user

    @staticmethod
    def _default_user(chat_id: int) -> int:
        return chat_id if chat_id > 0 else 4242

    @staticmethod
    def _bot_user(token: str) -> dict[str, Any]:
        prefix = token.split(":", 1)[0]
        return {
            "id": int(prefix) if prefix.isdigit() else 123456,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _store(self, message: dict[str, Any], *, from_bot: bool, entities: list[Entity]) -> None:
        key = (message["chat"]["id"], message["message_id"])
        self._messages[key] = message
        self._meta[key] = (from_bot, entities)

    def _user_message(
        self,
        chat_id: int,
        text: str,
        chat_type: str | None,
        user_id: int | None,
        language_code: str | None,
        entities: list[dict[str, Any]] | None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            if chat_type:
                self._chat_types[chat_id] = chat_type
            message: dict[str, Any] = {
                "message_id": message_id if message_id is not None else self._new_message_id(chat_id),
                "from": self._user(user_id or self._default_user(chat_id), language_code),
                "chat": self._chat(chat_id),
                "date": int(time.time()),
                "text": text,
            }
            found = _command_entities(text) if entities is None else entities
            if found:
                message["entities"] = found
            self._store(message, from_bot=False, entities=[])
        return message

    def _bot_message_for_callback(self, chat_id: int, message_id: int | None) -> dict[str, Any]:
        if message_id is None:
            ids = [mid for (cid, mid), (from_bot, _) in self._meta.items() if cid == chat_id and from_bot]
            message_id = max(ids) if ids else None
        if message_id is not None and (chat_id, message_id) in self._messages:
            return self._messages[(chat_id, message_id)]
        if message_id is None:
            message_id = self._new_message_id(chat_id)
        self._next_message_id[chat_id] = max(self._next_message_id[chat_id], message_id + 1)
        message = {
            "message_id": message_id,
            "from": self._bot_user(self._last_token),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": "(message with buttons)",
        }
        self._store(message, from_bot=True, entities=[])
        return message

    def _bot_message(self, call: Call, chat_id: int, **content: Any) -> dict[str, Any]:
        chat = self._chat(chat_id)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
        }
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = self._bot_user(call.token)
        message.update({key: value for key, value in content.items() if value is not None})
        thread = call.params.get("message_thread_id")
        if isinstance(thread, int) and chat_id in self._forums:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        return message

    # ------------------------------------------------------------------ validation helpers

    def _formatted(
        self, text: Any, parse_mode: Any, limit: int, *, caption: bool
    ) -> tuple[str, list[Entity]]:
        what = "message caption" if caption else "message text"
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        plain, entities = parse_text(text, parse_mode, strict_entities=self.strict_entities)
        plain = plain.strip()
        if not plain and not caption:
            raise ApiError(400, f"Bad Request: {what} is empty")
        if len(plain) > limit:
            raise ApiError(400, f"Bad Request: {'message caption' if caption else 'message'} is too long")
        return plain, entities

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(
                400,
                'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays',
            )
        for button in (button for row in rows for button in row):
            BotApi._check_button(button)
        return markup

    @staticmethod
    def _check_button(button: Any) -> None:
        prefix = "Bad Request: can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise ApiError(400, prefix + "InlineKeyboardButton must be an Object")
        if not isinstance(button.get("text"), str):
            raise ApiError(400, prefix + 'Field "text" must be of type String')
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        if "url" in button and (
            not isinstance(button["url"], str)
            or not button["url"].strip()
            or any(_is_space(char) for char in button["url"])
        ):
            raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
        if not BUTTON_ACTIONS.intersection(button):
            raise ApiError(400, prefix + "Text buttons are unallowed in the inline keyboard")

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._blocked:
            raise ApiError(403, self._blocked[chat_id])

    def _check_rate(self, call: Call, chat_id: int) -> None:
        if call.method.lower() not in self.rate_limited_methods or not self._limits:
            return
        now = time.monotonic()
        wait = 0.0
        for key, (limit, span) in self._rate_windows(chat_id):
            stamps = self._stamps[key]
            while stamps and stamps[0] <= now - span:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[-limit] + span - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        for key, _ in self._rate_windows(chat_id):
            self._stamps[key].append(now)

    def _rate_windows(self, chat_id: int) -> Iterator[tuple[tuple[str, int | None], tuple[int, float]]]:
        if "global" in self._limits:
            yield ("global", None), self._limits["global"]
        if "chat" in self._limits:
            yield ("chat", chat_id), self._limits["chat"]
        if "group" in self._limits and chat_id < 0:
            yield ("group", chat_id), self._limits["group"]

    def _editable(self, call: Call) -> tuple[int, int, dict[str, Any]] | None:
        """The message an edit targets, or None for inline messages."""
        if call.params.get("inline_message_id"):
            return None
        chat_id = self._resolve_chat(call.params.get("chat_id"))
        message_id = call.params.get("message_id")
        if not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        self._check_chat(chat_id)
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not self._meta[(chat_id, message_id)][0]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat_id, message_id, message

    # ------------------------------------------------------------------ methods

    def _m_getMe(self, call: Call) -> dict[str, Any]:  # noqa: N802 - Bot API naming
        return {
            **self._bot_user(call.token),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.supports_inline,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_getUpdates(self, call: Call) -> list[dict[str, Any]]:  # noqa: N802
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                "to delete the webhook first",
            )
        params = call.params
        self._poll_generation += 1
        generation = self._poll_generation
        self._changed.notify_all()  # an older long poll still waiting is now terminated
        self._confirm(params.get("offset"))
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = params["allowed_updates"]
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        deadline = time.monotonic() + min(timeout, self.max_poll_wait)
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot "
                    "instance is running",
                )
            ready = [update for update in self._updates if self._allowed(update)][:limit]
            left = deadline - time.monotonic()
            if ready or left <= 0 or self._closing.is_set():
                return ready
            self._waiting_polls += 1
            try:
                self._changed.wait(left)
            finally:
                self._waiting_polls -= 1

    def _confirm(self, offset: Any) -> None:
        if not isinstance(offset, int) or offset == 0:
            return
        if offset > 0:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
        else:
            self._updates = self._updates[offset:]

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = _update_type(update)
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in OPT_IN_UPDATES

    def _m_deleteWebhook(self, call: Call) -> bool:  # noqa: N802
        self.webhook_url = ""
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_setWebhook(self, call: Call) -> bool:  # noqa: N802
        url = call.params.get("url", "")
        if url and not str(url).startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = str(url)
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, call: Call) -> dict[str, Any]:  # noqa: N802
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(call: Call) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    def _m_setMyCommands(self, call: Call) -> bool:  # noqa: N802
        scope = call.params.get("scope")
        if isinstance(scope, dict) and scope.get("chat_id") in self._unknown_chats:
            raise ApiError(400, "Bad Request: chat not found")
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(call)] = commands
        return True

    def _m_getMyCommands(self, call: Call) -> list[dict[str, Any]]:  # noqa: N802
        return self.commands.get(self._commands_key(call), [])

    def _m_deleteMyCommands(self, call: Call) -> bool:  # noqa: N802
        self.commands.pop(self._commands_key(call), None)
        return True

    def _m_sendMessage(self, call: Call) -> dict[str, Any]:  # noqa: N802
        params = call.params
        chat_id = self._resolve_chat(params.get("chat_id"))
        if "entities" in params:
            plain, entities = self._formatted(params.get("text"), None, MAX_TEXT, caption=False)
        else:
            plain, entities = self._formatted(
                params.get("text"), params.get("parse_mode"), MAX_TEXT, caption=False
            )
        markup = self._check_markup(params.get("reply_markup"))
        self._check_chat(chat_id)
        self._check_thread(chat_id, params.get("message_thread_id"))
        self._check_rate(call, chat_id)
        message = self._bot_message(call, chat_id, text=plain, reply_markup=self._inline_only(markup))
        self._store(message, from_bot=True, entities=entities)
        return message

    def _m_sendPhoto(self, call: Call) -> dict[str, Any]:  # noqa: N802
        params = call.params
        chat_id = self._resolve_chat(params.get("chat_id"))
        sizes = self._photo_sizes(params.get("photo"))
        caption, entities = "", list[Entity]()
        if params.get("caption") is not None:
            mode = None if "caption_entities" in params else params.get("parse_mode")
            caption, entities = self._formatted(params.get("caption"), mode, MAX_CAPTION, caption=True)
        markup = self._check_markup(params.get("reply_markup"))
        self._check_chat(chat_id)
        self._check_thread(chat_id, params.get("message_thread_id"))
        self._check_rate(call, chat_id)
        message = self._bot_message(
            call, chat_id, photo=sizes, caption=caption or None, reply_markup=self._inline_only(markup)
        )
        self._store(message, from_bot=True, entities=entities)
        return message

    def _photo_sizes(self, photo: Any) -> list[dict[str, Any]]:
        if photo is None or photo == "":
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if isinstance(photo, str):
            if photo in self._files:
                return [self._photo_size(photo, self._files[photo][1])]
            if re.match(r"https?://", photo):
                return [
                    {
                        "file_id": photo,
                        "file_unique_id": f"url{abs(hash(photo)) % 10**8}",
                        "width": 1280,
                        "height": 720,
                    }
                ]
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if not isinstance(photo, Upload):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if photo.size == 0:
            raise ApiError(400, "Bad Request: file must be non-empty")
        width, height = _png_size(photo.data) or (1280, 720)
        if width + height > MAX_PHOTO_SIDES:
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        number = len(self._files) + 1
        file_id = f"AgACAgUAAxk{number:06d}"
        extension = photo.filename.rpartition(".")[2] if "." in photo.filename else "jpg"
        self._files[file_id] = (f"photos/file_{number}.{extension}", photo.data)
        return [self._photo_size(file_id, photo.data)]

    @staticmethod
    def _photo_size(file_id: str, data: bytes) -> dict[str, Any]:
        width, height = _png_size(data) or (1280, 720)
        return {
            "file_id": file_id,
            "file_unique_id": "AQAD" + file_id[-6:],
            "file_size": len(data),
            "width": width,
            "height": height,
        }

    def _keep_file(self, folder: str, filename: str, data: bytes) -> str:
        """Store an uploaded file for getFile and the download path; returns its file_id."""
        number = len(self._files) + 1
        file_id = f"BQACAgUAAxk{number:06d}"
        extension = filename.rpartition(".")[2] if "." in filename else "dat"
        self._files[file_id] = (f"{folder}/file_{number}.{extension}", data)
        return file_id

    def _m_sendDocument(self, call: Call) -> dict[str, Any]:  # noqa: N802
        params = call.params
        chat_id = self._resolve_chat(params.get("chat_id"))
        document = params.get("document")
        if isinstance(document, str) and document in self._files:
            file_id, (path, data) = document, self._files[document]
            filename = path.rpartition("/")[2]
        elif isinstance(document, Upload):
            if document.size == 0:
                raise ApiError(400, "Bad Request: file must be non-empty")
            file_id, data, filename = (
                self._keep_file("documents", document.filename, document.data),
                document.data,
                document.filename,
            )
        else:
            raise ApiError(400, "Bad Request: there is no document in the request")
        caption, entities = "", list[Entity]()
        if params.get("caption") is not None:
            mode = None if "caption_entities" in params else params.get("parse_mode")
            caption, entities = self._formatted(params.get("caption"), mode, MAX_CAPTION, caption=True)
        markup = self._check_markup(params.get("reply_markup"))
        self._check_chat(chat_id)
        self._check_thread(chat_id, params.get("message_thread_id"))
        self._check_rate(call, chat_id)
        doc = {
            "file_id": file_id,
            "file_unique_id": "AQAD" + file_id[-6:],
            "file_name": filename,
            "file_size": len(data),
        }
        message = self._bot_message(
            call, chat_id, document=doc, caption=caption or None, reply_markup=self._inline_only(markup)
        )
        self._store(message, from_bot=True, entities=entities)
        return message

    def document(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent or a user uploaded."""
        with self._lock:
            return self._files[file_id][1]

    def _check_thread(self, chat_id: int, thread: Any) -> None:
        """In a forum, a message_thread_id must name an open topic (Telegram: 400 "message thread not found")."""
        if thread is None or chat_id not in self._forums:
            return
        if not isinstance(thread, int) or thread not in self._forums[chat_id]:
            raise ApiError(400, THREAD_NOT_FOUND)

    def _m_answerInlineQuery(self, call: Call) -> bool:  # noqa: N802
        params = call.params
        query_id = str(params.get("inline_query_id", ""))
        if query_id not in self._open_inline:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        results = params.get("results")
        if not isinstance(results, list):
            raise ApiError(400, "Bad Request: can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        ids = [str(r.get("id", "")) if isinstance(r, dict) else "" for r in results]
        if len(set(ids)) != len(ids):
            raise ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
        for result, result_id in zip(results, ids, strict=True):
            if not 1 <= len(result_id.encode("utf-8")) <= MAX_RESULT_ID:
                raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
            self._check_inline_result(result)
        cache_time = params.get("cache_time", 300)
        if not isinstance(cache_time, int) or cache_time < 0:
            raise ApiError(400, "Bad Request: wrong cache_time specified")
        self._open_inline.discard(query_id)  # a query is answered once
        self.inline_answers[query_id] = params
        return True

    def _check_inline_result(self, result: dict[str, Any]) -> None:
        kind = result.get("type")
        self._check_markup(result.get("reply_markup"))
        content = result.get("input_message_content")
        if content is not None:
            if not isinstance(content, dict) or "message_text" not in content:
                raise ApiError(400, "Bad Request: MESSAGE_EMPTY")
            mode = None if "entities" in content else content.get("parse_mode")
            self._formatted(content.get("message_text"), mode, MAX_TEXT, caption=False)
        if kind == "article":
            if not str(result.get("title", "")).strip():
                raise ApiError(400, "Bad Request: RESULT_TITLE_EMPTY")
            if content is None:
                raise ApiError(400, "Bad Request: SEND_MESSAGE_MEDIA_INVALID")
        elif kind == "photo" and "photo_file_id" in result:
            if result["photo_file_id"] not in self._files:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            if result.get("caption") is not None:
                mode = None if "caption_entities" in result else result.get("parse_mode")
                self._formatted(result.get("caption"), mode, MAX_CAPTION, caption=True)
        else:
            raise ApiError(400, "Bad Request: RESULT_TYPE_INVALID")

    @staticmethod
    def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
        return markup if markup and "inline_keyboard" in markup else None

    def _m_editMessageText(self, call: Call) -> dict[str, Any] | bool:  # noqa: N802
        params = call.params
        mode = None if "entities" in params else params.get("parse_mode")
        plain, entities = self._formatted(params.get("text"), mode, MAX_TEXT, caption=False)
        markup = self._inline_only(self._check_markup(params.get("reply_markup")))
        target = self._editable(call)
        if target is None:
            return True
        chat_id, message_id, message = target
        if (message.get("text"), self._meta[(chat_id, message_id)][1], message.get("reply_markup")) == (
            plain,
            entities,
            markup,
        ):
            raise ApiError(400, NOT_MODIFIED)
        updated = {**message, "text": plain, "edit_date": int(time.time())}
        updated.pop("reply_markup", None)
        if markup:
            updated["reply_markup"] = markup
        self._store(updated, from_bot=True, entities=entities)
        return updated

    def _m_editMessageReplyMarkup(self, call: Call) -> dict[str, Any] | bool:  # noqa: N802
        markup = self._inline_only(self._check_markup(call.params.get("reply_markup")))
        target = self._editable(call)
        if target is None:
            return True
        chat_id, message_id, message = target
        if message.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        updated = {**message, "edit_date": int(time.time())}
        updated.pop("reply_markup", None)
        if markup:
            updated["reply_markup"] = markup
        self._store(updated, from_bot=True, entities=self._meta[(chat_id, message_id)][1])
        return updated

    def _m_answerCallbackQuery(self, call: Call) -> bool:  # noqa: N802
        query_id = str(call.params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(call.params.get("text", ""))) > MAX_ANSWER_TEXT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered[query_id] = call.params
        return True

    def _m_sendChatAction(self, call: Call) -> bool:  # noqa: N802
        chat_id = self._resolve_chat(call.params.get("chat_id"))
        if call.params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_chat(chat_id)
        return True

    def _m_getChat(self, call: Call) -> dict[str, Any]:  # noqa: N802
        chat_id = self._resolve_chat(call.params.get("chat_id"))
        if chat_id in self._migrated:
            self._check_chat(chat_id)
        return {
            **self._chat(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_getChatMember(self, call: Call) -> dict[str, Any]:  # noqa: N802
        chat_id = self._resolve_chat(call.params.get("chat_id"))
        raw = call.params.get("user_id")
        if isinstance(raw, bool) or not re.fullmatch(r"-?\d+", str(raw)):
            raise ApiError(400, "Bad Request: invalid user_id specified")
        user_id = int(str(raw))
        self._check_chat(chat_id)
        if self.chat_type(chat_id) == "private":
            status = "member" if user_id == chat_id else "left"
        else:
            status = self._members.get((chat_id, user_id), self.default_member_status)
        return {"status": status, "user": self._user(user_id, None), **MEMBER_STATUSES[status]}

    def _m_getFile(self, call: Call) -> dict[str, Any]:  # noqa: N802
        file_id = str(call.params.get("file_id", ""))
        if file_id not in self._files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": "AQAD" + file_id[-6:],
            "file_size": len(data),
            "file_path": path,
        }

    def _m_close(self, call: Call) -> bool:
        return True

    def _m_logOut(self, call: Call) -> bool:  # noqa: N802
        return True
