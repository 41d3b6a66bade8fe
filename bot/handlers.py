"""Telegram handlers: parse what the user sent, call the stores or `bot.answers`, reply. Never crash."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    Chat,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from alerts.calendar import HK_TZ, schedule_for
from alerts.rules import RULE_IDS
from alerts.sources import SOURCES
from alerts.store.outbox import OutboxItem, item_id
from alerts.store.subscriptions import ChatSettings, parse_quiet
from alerts.tickers import known
from bot.admins import chat_lang, notify_admins
from bot.answers import READ_ONLY, answer
from bot.answers import Reply as Answer
from bot.charts import KINDS as CHART_KINDS
from bot.codes import resolve
from bot.deeplinks import bot_username, keyboard, parse_payload, watch_button
from bot.delivery import retry_seconds
from bot.deps import Deps, deps
from bot.exports import (
    EXPORT_DAYS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    ImportRefused,
    ImportRow,
    export_csv,
    read_import,
)
from bot.fairness import Verdict, may_change_group, spend
from bot.html import esc, split_message
from bot.i18n import day, has, num, t
from bot.inline import on_inline_query
from bot.render import rule_emoji, rule_title
from bot.view import DataView
from config.settings import redact

log = logging.getLogger(__name__)

COMMANDS_PER_MINUTE = 20
MAX_TEXT_IN = 1000  # characters of a user's message we look at
MAX_ARGS = 50  # /watch takes many codes; anything beyond this is a paste accident
# Escaped characters of a /broadcast: the cap applies after escaping (`<` becomes `&lt;`), so a broadcast is
# always one message per chat, never a burst of parts.
MAX_BROADCAST = 3500
REPLY_RETRY_MAX_SECONDS = 5.0  # a command reply waits out a short flood-control pause once, never a long one
DIGEST_TIME = "08:30"
_DURATION_RE = re.compile(r"^(\d{1,3})([mhdw])$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

MENU: tuple[
    str, ...
] = (  # the command menu, in order; each description is the catalogue message menu.<command>
    "start",
    "help",
    "watch",
    "unwatch",
    "list",
    "card",
    "chart",
    "flows",
    "short",
    "buybacks",
    "insiders",
    "top",
    "why",
    "history",
    "settings",
    "mute",
    "quiet",
    "digest",
    "lang",
    "status",
    "export",
    "import",
)
ADMIN_COMMANDS = ("stats", "broadcast")
# In groups these change what the whole group receives: only its administrators may use them (bot.fairness).
GROUP_ADMIN_COMMANDS = frozenset(
    {"watch", "unwatch", "mute", "unmute", "quiet", "digest", "lang", "here", "import"}
)
# The menus per scope (setMyCommands): private chats get MENU; group members the commands they may use (settings
# changes are for administrators); group administrators everything a group has, /here included; the operators'
# chats (ADMIN_CHAT_IDS) MENU plus the operator commands.
GROUP_MENU: tuple[str, ...] = tuple(c for c in MENU if c not in GROUP_ADMIN_COMMANDS and c != "settings")
GROUP_ADMIN_MENU: tuple[str, ...] = (*MENU, "here")
OPERATOR_MENU: tuple[str, ...] = (*MENU, *ADMIN_COMMANDS)
BROADCAST_CHUNK = 1000  # outbox items per pipeline: bounded memory and round trips at 100k chats


@dataclass
class Ctx:
    """What a command implementation gets."""

    update: Update
    deps: Deps
    chat_id: int
    settings: ChatSettings
    args: list[str]
    now: datetime
    is_admin: bool

    @property
    def lang(self) -> str:
        """The chat's language."""
        return self.settings.lang


Reply = tuple[str, InlineKeyboardMarkup | None]
Impl = Callable[[Ctx], Awaitable[Reply]]


async def send_reply(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Reply in HTML, split to Telegram's limit; a refused markup falls back to escaped plain text."""
    parts = split_message(text)
    for index, part in enumerate(parts):
        keyboard = markup if index == len(parts) - 1 else None
        try:
            await flood_safe(
                partial(
                    message.reply_text,
                    part,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    do_quote=False,
                )
            )
        except BadRequest as exc:
            log.error("reply refused (%s); sending as plain text", exc.message)
            await flood_safe(
                partial(
                    message.reply_text,
                    re.sub(r"<[^>]+>", "", part)[:4096],
                    reply_markup=keyboard,
                    do_quote=False,
                )
            )


async def flood_safe(send: Callable[[], Awaitable[object]]) -> None:
    """Await `send()`; on flood control (429) wait the time Telegram asks, if short, and send once more.

    Two commands sent in quick succession (or queued behind a busy moment) get their replies back to back, and
    Telegram allows about one message a second per chat: without this the second reply would be lost.
    """
    try:
        await send()
    except RetryAfter as exc:
        wait = retry_seconds(exc)
        if wait > REPLY_RETRY_MAX_SECONDS:
            raise
        await asyncio.sleep(wait)
        await send()


def _is_admin(update: Update, admins: tuple[int, ...]) -> bool:
    user = update.effective_user
    chat = update.effective_chat
    return bool((user and user.id in admins) or (chat and chat.id in admins and chat.type == "private"))


async def send_private(bot: Bot, chat_id: int, text: str) -> None:
    """Send `text` (HTML, split to Telegram's limit) to a private chat rather than as a reply."""
    for part in split_message(text):
        await flood_safe(
            partial(
                bot.send_message,
                chat_id,
                part,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )


async def _admitted(d: Deps, update: Update, chat: Chat, message: Message) -> ChatSettings | None:
    """The chat's settings when this message is within its flood budget; None when it is dropped (or, the first
    time over, answered with "slow down")."""
    verdict = await within_budget(d, update, chat, d.clock())
    if verdict is Verdict.DROP:
        return None
    settings = await d.subs.settings(chat.id)
    if verdict is Verdict.WARN:
        await send_reply(message, t(settings.lang, "rate_limited"))
        return None
    return settings


async def within_budget(d: Deps, update: Update, chat: Chat, now: datetime) -> Verdict:
    """Count a command or button press against the sender's per-minute budget (bot.fairness.spend)."""
    return await spend(d.redis, chat, update.effective_user, now, COMMANDS_PER_MINUTE)


def command(
    impl: Impl, *, admin: bool = False, group_admin: bool = False
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """Wrap a command: budget, register the chat, operator and group-administrator checks, reply.

    Over the budget the sender is told once and then ignored for the rest of the minute: nothing here waits. An
    operator command used in a group is answered in the operator's private chat, never in front of the group.
    """

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        d = deps(context)
        now = d.clock()
        verdict = await within_budget(d, update, chat, now)
        if verdict is not Verdict.OK:
            if verdict is Verdict.WARN:  # say it once, then stay silent for the rest of the minute
                settings = await d.subs.settings(chat.id)
                await send_reply(message, t(settings.lang, "rate_limited"))
            return
        user = update.effective_user
        await d.subs.touch(chat.id, chat.type, user.language_code if user else None)
        settings = await d.subs.settings(chat.id)
        is_admin = _is_admin(update, d.settings.admin_chat_ids)
        if admin and not is_admin:
            await send_reply(message, t(settings.lang, "admin_only"))
            return
        if group_admin and not await may_change_group(context.bot, d.redis, chat, user, message.sender_chat):
            await send_reply(message, t(settings.lang, "group_admins_only"))
            return
        if len(context.args or []) > MAX_ARGS:
            await send_reply(message, t(settings.lang, "too_many_args", limit=MAX_ARGS))
            return
        args = [a[:64] for a in (context.args or [])]
        group_lang, private = settings.lang, admin and user is not None and chat.type != "private"
        if private and user is not None:  # the operator reads the answer in their own chat and language
            settings = await d.subs.settings(user.id)
        text, markup = await impl(Ctx(update, d, chat.id, settings, args, now, is_admin))
        if private and user is not None and text:
            try:
                await send_private(context.bot, user.id, text)
            except Forbidden:  # the operator never opened a private chat with the bot
                await send_reply(message, t(group_lang, "admin_private_blocked"))
                return
            await send_reply(message, t(group_lang, "admin_sent_privately"))
            return
        if text:  # empty: the command answered with something else (a photo)
            await send_reply(message, text, markup)

    return handler


def _names_line(codes: list[str], names: dict[str, str]) -> str:
    return ", ".join(f"<b>{esc(c)}</b> {esc(names.get(c, ''))}".strip() for c in codes)


async def _resolve_all(ctx: Ctx, tokens: list[str]) -> tuple[list[str], list[str]]:
    view = await ctx.deps.view()
    names = view.names()
    codes, problems = [], []
    for token in tokens:
        got = resolve(token, names or None)
        checked = (
            await known(ctx.deps.redis, got.code) if got.code is not None and got.market == "US" else True
        )
        if (
            checked is None
        ):  # the SEC ticker map is not loaded yet: refuse for now rather than accept unchecked
            problems.append(t(ctx.lang, "ticker_unchecked", text=f"<code>{esc(got.code)}</code>"))
            continue
        if checked is False:
            got = replace(got, code=None)  # the SEC ticker map is loaded and has no such ticker
        if got.code is not None:
            codes.append(got.code)
            continue
        line = t(ctx.lang, "unknown_code", text=f"<code>{esc(token[:32])}</code>")
        if got.suggestions:
            line += t(ctx.lang, "did_you_mean", options=_names_line(list(got.suggestions), names))
        problems.append(line)
    return codes, problems


def card_markup(reply: Answer, bot: Bot) -> InlineKeyboardMarkup | None:
    """A card's buttons plus its Watch deep link (kept when the card is forwarded)."""
    buttons = list(reply.buttons)
    if reply.code:
        watch = watch_button(t(reply.lang, "button.watch"), reply.code)
        buttons += [watch] if watch else []
    return keyboard(buttons, bot_username(bot))


async def cmd_start(ctx: Ctx) -> Reply:
    """/start [payload]: the welcome, or what a deep link asks (watch_01810, card_01810, lang_zh)."""
    link = parse_payload(ctx.args[0]) if len(ctx.args) == 1 else None
    if link is None:  # no payload, or a malformed or unknown one: the normal welcome
        return t(ctx.lang, "welcome"), None
    if link.action == "lang":
        await ctx.deps.subs.set_lang(ctx.chat_id, link.value)
        return t(link.value, "lang_set") + "\n\n" + t(link.value, "welcome"), None
    if link.action == "card":
        view = await ctx.deps.view()
        if resolve(link.value, view.names() or None).code is None:
            return t(ctx.lang, "welcome"), None
        reply = cached_answer(view, "card", [link.value], ctx.lang)
        return reply.text, card_markup(reply, ctx.update.get_bot())
    chat, message = ctx.update.effective_chat, ctx.update.effective_message
    if chat is not None and not await may_change_group(
        ctx.update.get_bot(),
        ctx.deps.redis,
        chat,
        ctx.update.effective_user,
        message.sender_chat if message else None,
    ):
        return t(ctx.lang, "group_admins_only"), None
    codes, problems = await _resolve_all(replace(ctx, args=[link.value]), [link.value])
    if problems or not codes:
        return t(ctx.lang, "welcome"), None
    return await cmd_watch(replace(ctx, args=codes))


async def cmd_watch(ctx: Ctx) -> Reply:
    """/watch CODES…"""
    if not ctx.args:
        return t(ctx.lang, "watch_usage"), None
    codes, lines = await _resolve_all(ctx, ctx.args)
    names = (await ctx.deps.view()).names()
    added, already, refused = await ctx.deps.subs.watch(ctx.chat_id, codes)
    if added:
        lines.insert(0, t(ctx.lang, "watch_added", codes=_names_line(added, names)))
    if already:
        lines.append(t(ctx.lang, "watch_already", codes=_names_line(already, names)))
    if refused:
        lines.append(t(ctx.lang, "watch_cap", cap=ctx.deps.subs.cap, codes=_names_line(refused, names)))
    return "\n".join(lines), None


async def cmd_unwatch(ctx: Ctx) -> Reply:
    """/unwatch CODES…"""
    if not ctx.args:
        return t(ctx.lang, "unwatch_usage"), None
    codes, lines = await _resolve_all(ctx, ctx.args)
    removed = await ctx.deps.subs.unwatch(ctx.chat_id, codes)
    missing = [c for c in codes if c not in removed]
    if removed:
        lines.insert(0, t(ctx.lang, "unwatched", codes=", ".join(removed)))
    if missing:
        lines.append(t(ctx.lang, "not_watching", codes=", ".join(missing)))
    return "\n".join(lines), None


async def cmd_list(ctx: Ctx) -> Reply:
    """/list"""
    codes = await ctx.deps.subs.watchlist(ctx.chat_id)
    if not codes:
        return t(ctx.lang, "list_empty"), None
    names = (await ctx.deps.view()).names()
    lines = [t(ctx.lang, "list_header", n=len(codes))] + [
        f"• <b>{esc(c)}</b> {esc(names.get(c, ''))}" for c in codes
    ]
    return "\n".join(lines), None


def cached_answer(view: DataView, command: str, args: list[str], lang: str) -> Answer:
    """`bot.answers.answer`, computed once per view, command, arguments and language (see DataView.memo)."""
    return view.memo(("answer", command, tuple(args), lang), lambda: answer(view, command, args, lang))


def _answer_command(name: str) -> Impl:
    async def impl(ctx: Ctx) -> Reply:
        reply = cached_answer(await ctx.deps.view(), name, ctx.args, ctx.lang)
        return reply.text, card_markup(reply, ctx.update.get_bot())

    impl.__doc__ = f"/{name}"
    return impl


async def cmd_chart(ctx: Ctx) -> Reply:
    """/chart CODE [short|position|southbound]: a photo, or a text saying why not."""
    args = list(ctx.args)
    kind = args.pop().lower() if len(args) >= 2 and args[-1].lower() in CHART_KINDS else "short"
    if not args or len(args) > 3:
        return t(ctx.lang, "chart_usage"), None
    names = (await ctx.deps.view()).names() or None
    # "/chart 1810 volume": a stock and a kind we do not draw (a name of several words resolves whole)
    if len(args) >= 2 and resolve(" ".join(args), names).code is None and resolve(args[0], names).code:
        return t(ctx.lang, "chart_unknown_kind", kind=esc(args[-1][:20])), None
    codes, problems = await _resolve_all(ctx, [" ".join(args)])
    if problems or not codes:
        return "\n".join(problems) or t(ctx.lang, "chart_usage"), None
    bot = ctx.update.get_bot()
    return await ctx.deps.charts().reply(bot, ctx.chat_id, codes[0], kind, ctx.lang), None


def parse_duration(text: str) -> timedelta | None:
    """``30m`` / ``12h`` / ``1d`` / ``2w`` → timedelta (≤ 90 days), else None."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        return None
    value = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    return value if timedelta(0) < value <= timedelta(days=90) else None


async def _mute_target(ctx: Ctx, token: str) -> str | None:
    if token.lower() in RULE_IDS:
        return token.lower()
    codes, _ = await _resolve_all(ctx, [token])
    return codes[0] if codes else None


async def cmd_mute(ctx: Ctx) -> Reply:
    """/mute CODE|RULE [DURATION]"""
    if not ctx.args or len(ctx.args) > 2:
        return t(ctx.lang, "mute_usage"), None
    duration = parse_duration(ctx.args[1]) if len(ctx.args) == 2 else timedelta(days=1)
    if duration is None:
        return t(ctx.lang, "bad_duration"), None
    target = await _mute_target(ctx, ctx.args[0])
    if target is None:
        return t(ctx.lang, "unknown_code", text=f"<code>{esc(ctx.args[0][:32])}</code>"), None
    until = ctx.now + duration
    await ctx.deps.subs.mute(ctx.chat_id, target, until)
    return t(ctx.lang, "muted", target=esc(target), until=f"{until:%d/%m %H:%M}"), None


async def cmd_unmute(ctx: Ctx) -> Reply:
    """/unmute CODE|RULE"""
    if len(ctx.args) != 1:
        return t(ctx.lang, "mute_usage"), None
    target = await _mute_target(ctx, ctx.args[0])
    if target is None or not await ctx.deps.subs.unmute(ctx.chat_id, target):
        return t(ctx.lang, "not_muted", target=esc(ctx.args[0][:32])), None
    return t(ctx.lang, "unmuted", target=esc(target)), None


async def cmd_quiet(ctx: Ctx) -> Reply:
    """/quiet HH:MM-HH:MM | off"""
    text = " ".join(ctx.args)
    if text.lower() in ("off", "none", "0"):
        await ctx.deps.subs.set_quiet(ctx.chat_id, None)
        return t(ctx.lang, "quiet_off"), None
    try:
        quiet = parse_quiet(text)
    except ValueError:
        return t(ctx.lang, "quiet_usage"), None
    await ctx.deps.subs.set_quiet(ctx.chat_id, quiet)
    return t(ctx.lang, "quiet_set", start=f"{quiet[0]:%H:%M}", end=f"{quiet[1]:%H:%M}"), None


async def cmd_digest(ctx: Ctx) -> Reply:
    """/digest on|off"""
    if len(ctx.args) != 1 or ctx.args[0].lower() not in ("on", "off"):
        return t(ctx.lang, "digest_usage"), None
    on = ctx.args[0].lower() == "on"
    await ctx.deps.subs.set_digest(ctx.chat_id, on)
    return (t(ctx.lang, "digest_on", time=DIGEST_TIME) if on else t(ctx.lang, "digest_off")), None


async def cmd_lang(ctx: Ctx) -> Reply:
    """/lang en|zh"""
    choice = ctx.args[0].lower() if len(ctx.args) == 1 else ""
    choice = {"zh-hant": "zh", "zh-hk": "zh", "中文": "zh", "繁體": "zh", "english": "en"}.get(choice, choice)
    if choice not in ("en", "zh"):
        return t(ctx.lang, "lang_usage"), None
    await ctx.deps.subs.set_lang(ctx.chat_id, choice)
    return t(choice, "lang_set"), None


async def cmd_here(ctx: Ctx) -> Reply:
    """/here (group administrators): in a forum topic, send this chat's alerts to that topic; in General, to General."""
    chat, message = ctx.update.effective_chat, ctx.update.effective_message
    if chat is None or message is None or chat.type != "supergroup" or not chat.is_forum:
        return t(ctx.lang, "here_not_forum"), None
    thread = message.message_thread_id if message.is_topic_message else None
    await ctx.deps.subs.set_thread(ctx.chat_id, thread)
    return t(ctx.lang, "here_topic" if thread is not None else "here_general"), None


async def cmd_export(ctx: Ctx) -> Reply:
    """/export: the watchlist and the last 90 days of alerts on it, as a CSV document."""
    message = ctx.update.effective_message
    if message is None:
        return "", None
    codes = await ctx.deps.subs.watchlist(ctx.chat_id)
    view = await ctx.deps.view()
    since = ctx.now.astimezone(HK_TZ).date() - timedelta(days=EXPORT_DAYS)
    targets = [*codes, "MARKET"] if ctx.settings.market else codes
    alerts = []
    for code in targets:  # the alert log keeps each code's alerts by trade date
        alerts += [a for a in await ctx.deps.alert_log.for_code(code, limit=500) if a.trade_date >= since]
    data = export_csv(codes, view.names(ctx.lang), alerts, ctx.lang)
    stamp = f"{ctx.now.astimezone(HK_TZ):%Y%m%d}"
    await flood_safe(
        partial(
            message.reply_document,
            InputFile(data, filename=f"positioning-{stamp}.csv"),
            caption=t(ctx.lang, "export_caption", stocks=len(codes), alerts=len(alerts), days=EXPORT_DAYS),
            parse_mode=ParseMode.HTML,
            do_quote=False,
        )
    )
    return "", None


def _import_document(message: Message) -> Document | None:
    """The CSV to import: sent with the caption /import, or the document /import replies to."""
    if message.document is not None:
        return message.document
    replied = message.reply_to_message
    return replied.document if replied is not None and replied.document is not None else None


async def cmd_import(ctx: Ctx) -> Reply:
    """/import (a CSV sent with this caption, or in reply to one): restore a watchlist, capped and validated."""
    message = ctx.update.effective_message
    document = _import_document(message) if message is not None else None
    if document is None:
        return t(ctx.lang, "import_usage"), None
    if document.file_size is not None and document.file_size > MAX_IMPORT_BYTES:
        return t(ctx.lang, "import.bad_size", kb=MAX_IMPORT_BYTES // 1024), None
    try:
        file = await document.get_file()
        data = bytes(await file.download_as_bytearray())
        rows = read_import(data)
    except ImportRefused as exc:
        return t(ctx.lang, exc.reason, kb=MAX_IMPORT_BYTES // 1024, rows=MAX_IMPORT_ROWS), None
    except BadRequest as exc:  # "file is too big" (over the Bot API's 20 MB) and other refusals of getFile
        log.info("import: file refused by Telegram: %s", exc.message)
        return t(ctx.lang, "import.bad_size", kb=MAX_IMPORT_BYTES // 1024), None
    if not rows:
        return t(ctx.lang, "import.empty"), None
    return await _import_rows(ctx, rows), None


async def _import_rows(ctx: Ctx, rows: list[ImportRow]) -> str:
    """Watch each row's code as /watch would; the summary lists what was added, already there and refused."""
    cap = ctx.deps.subs.cap
    refused: list[str] = []
    wanted: list[str] = []
    for row in rows[: cap * 2]:  # more rows than twice the cap cannot all be new stocks: the rest are refused
        codes, _problems = await _resolve_all(ctx, [row.token])
        if codes:
            wanted.append(codes[0])
        else:
            refused.append(t(ctx.lang, "import.refused_unknown", line=row.line, text=esc(row.token)))
    if len(rows) > cap * 2:
        refused.append(t(ctx.lang, "import.refused_rows", n=len(rows) - cap * 2))
    names = (await ctx.deps.view()).names(ctx.lang)
    added, already, over = await ctx.deps.subs.watch(ctx.chat_id, wanted)
    lines = [
        t(
            ctx.lang,
            "import.summary",
            added=len(added),
            already=len(already),
            refused=len(refused) + len(over),
        )
    ]
    if added:
        lines.append(t(ctx.lang, "watch_added", codes=_names_line(added, names)))
    if already:
        lines.append(t(ctx.lang, "watch_already", codes=_names_line(already, names)))
    if over:
        lines.append(t(ctx.lang, "watch_cap", cap=cap, codes=_names_line(over, names)))
    lines += refused[:20]
    if len(refused) > 20:
        lines.append(t(ctx.lang, "import.refused_more", n=len(refused) - 20))
    return "\n".join(lines)


async def cmd_status(ctx: Ctx) -> Reply:
    """/status"""
    lines = [t(ctx.lang, "status_header")]
    for name in SOURCES:
        status = await ctx.deps.frames.status(name)
        if "ok_at" not in status:
            lines.append(f"• <code>{esc(name)}</code>: {t(ctx.lang, 'status_never')}")
            continue
        fetched = datetime.fromisoformat(status["ok_at"]).astimezone(HK_TZ)
        file_day = datetime.fromisoformat(status["ok_date"]).date() if status.get("ok_date") else None
        line = f"• <code>{esc(name)}</code>: " + t(
            ctx.lang,
            "status_line",
            date=esc(day(ctx.lang, file_day) if file_day else "?"),
            time=f"{fetched:%d/%m %H:%M}",
        )
        if file_day is not None:
            lag = (fetched - schedule_for(name).published_at(file_day)).total_seconds() / 60
            line += t(ctx.lang, "status_lag", minutes=f"{lag:+.0f}")
        if status.get("error_at", "") > status["ok_at"]:
            line += "\n   " + t(ctx.lang, "status_error", message=esc(status.get("error_message", "")[:200]))
        lines.append(line)
    return "\n".join(lines), None


async def cmd_stats(ctx: Ctx) -> Reply:
    """/stats (admins)"""
    stats = await ctx.deps.subs.stats()
    stats["outbox_pending"] = await ctx.deps.outbox.pending()
    stats["dead_letters"] = len(await ctx.deps.outbox.dead())
    lines = [t(ctx.lang, "stats_header")]
    for key, value in stats.items():
        label = t(ctx.lang, f"stats.{key}") if has(f"stats.{key}") else key
        lines.append(f"• {esc(label)}: {num(ctx.lang, value)}")
    return "\n".join(lines), None


async def cmd_broadcast(ctx: Ctx) -> Reply:
    """/broadcast TEXT (admins): queued through the outbox, so rate limits and errors apply as to alerts."""
    message = ctx.update.effective_message
    raw = (message.text or "") if message else ""
    body = raw.split(maxsplit=1)[1] if len(raw.split(maxsplit=1)) == 2 else ""
    if not body.strip():
        return t(ctx.lang, "broadcast_usage"), None
    stamp = hashlib.sha256(f"{body}|{ctx.now.isoformat()}".encode()).hexdigest()[:12]
    chats = await ctx.deps.subs.active_chats()
    text = "📣 " + escaped_prefix(body, MAX_BROADCAST)
    for start in range(0, len(chats), BROADCAST_CHUNK):  # two round trips per chunk, not two per chat
        await ctx.deps.outbox.put_many(
            [
                (OutboxItem(id=item_id(chat, "text", [stamp]), chat_id=chat, kind="text", text=text), ctx.now)
                for chat in chats[start : start + BROADCAST_CHUNK]
            ]
        )
    return t(ctx.lang, "broadcast_queued", n=len(chats)), None


def escaped_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` whose HTML-escaped form fits in `limit` characters, escaped."""
    pieces: list[str] = []
    size = 0
    for char in text:
        piece = esc(char)
        if size + len(piece) > limit:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


SEVERITY_STEPS = ("all", "notice", "warning", "critical")  # the minimum-severity button cycles through these


def settings_keyboard(settings: ChatSettings) -> InlineKeyboardMarkup:
    """Inline keyboard of the chat's settings; callback data are short keys (≤ 64 bytes)."""
    lang = settings.lang
    rows = []
    for index, rule in enumerate(RULE_IDS):
        mark = "🚫" if rule in settings.rules_off else "✅"
        rows.append(
            [
                InlineKeyboardButton(
                    f"{mark} {rule_emoji(rule)} {rule_title(rule, lang)}", callback_data=f"set:r:{index}"
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                ("✅ " if settings.market else "🚫 ") + t(lang, "settings.market"), callback_data="set:m"
            ),
            InlineKeyboardButton(
                ("✅ " if settings.digest else "🚫 ") + t(lang, "settings.digest"), callback_data="set:d"
            ),
        ]
    )
    severity = int(settings.thresholds.get("_all", {}).get("min_severity", 0))
    level = t(lang, f"severity.{SEVERITY_STEPS[min(severity, 3)]}")
    z = float(settings.thresholds.get("short_ratio_spike", {}).get("z", 2.0))
    rows.append([InlineKeyboardButton(t(lang, "settings.z", z=f"{z:g}"), callback_data="set:z")])
    # The switch names the other language in that language, so a reader of either can find it.
    rows.append(
        [
            InlineKeyboardButton(t(lang, "settings.severity", level=level), callback_data="set:s"),
            InlineKeyboardButton("中文" if lang == "en" else "English", callback_data="set:l"),
        ]
    )
    return InlineKeyboardMarkup(rows)


async def cmd_settings(ctx: Ctx) -> Reply:
    """/settings"""
    return t(ctx.lang, "settings_header"), settings_keyboard(ctx.settings)


_CALLBACK_RE = re.compile(
    r"^(card|chart):(\d{5})$|^mute:(\d{5}):(\d{1,3}[mhdw])$|^set:(r:\d{1,2}|m|d|s|l|z)$"
)
Z_STEPS = (2.0, 2.5, 3.0, 4.0)


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Inline buttons: card, chart, mute, settings toggles.

    Every press is answered, except those over the sender's budget after the one "slow down" answer. In groups a
    mute or a settings toggle needs an administrator, as the commands that change the group do.
    """
    query = update.callback_query
    if query is None:
        return
    d = deps(context)
    chat = update.effective_chat
    chat_id = chat.id if chat else (query.from_user.id if query.from_user else 0)
    now = d.clock()
    # Presses share the commands' budget: a flood of presses is told once, then ignored (left unanswered).
    verdict = await within_budget(d, update, chat, now) if chat is not None else Verdict.OK
    if verdict is Verdict.DROP:
        return
    settings = await d.subs.settings(chat_id)
    if verdict is Verdict.WARN:
        await query.answer(t(settings.lang, "rate_limited"))
        return
    match = _CALLBACK_RE.match(query.data or "")
    if match is None or chat_id == 0:
        await query.answer(t(settings.lang, "button_expired"))
        return
    changes = bool(match.group(3) or match.group(5))  # a mute or a settings toggle, not a card or chart
    if (
        changes
        and chat is not None
        and not await may_change_group(context.bot, d.redis, chat, query.from_user)
    ):
        await query.answer(t(settings.lang, "group_admins_only"))
        return
    if match.group(1) == "card":
        await query.answer()
        reply = cached_answer(await d.view(), "card", [match.group(2)], settings.lang)
        if query.message is not None and isinstance(query.message, Message):
            watch = watch_button(t(settings.lang, "button.watch"), match.group(2))
            await send_reply(
                query.message, reply.text, keyboard([watch] if watch else [], bot_username(context.bot))
            )
        return
    if match.group(1) == "chart":
        await query.answer()
        text = await d.charts().reply(context.bot, chat_id, match.group(2), "short", settings.lang)
        if text and isinstance(query.message, Message):
            await send_reply(query.message, text)
        return
    if match.group(3):
        until = now + (parse_duration(match.group(4)) or timedelta(days=1))
        await d.subs.mute(chat_id, match.group(3), until)
        await query.answer(t(settings.lang, "muted", target=match.group(3), until=f"{until:%d/%m %H:%M}"))
        return
    await _toggle_setting(d, chat_id, settings, match.group(5))
    await query.answer()
    updated = await d.subs.settings(chat_id)
    try:
        await query.edit_message_reply_markup(settings_keyboard(updated))
    except BadRequest as exc:  # "message is not modified" or a deleted message: nothing to fix
        log.info("settings keyboard not edited: %s", exc.message)


async def _toggle_setting(d: Deps, chat_id: int, settings: ChatSettings, key: str) -> None:
    if key.startswith("r:"):
        index = int(key[2:])
        if index < len(RULE_IDS):
            rule = RULE_IDS[index]
            await d.subs.set_rule(chat_id, rule, on=rule in settings.rules_off)
    elif key == "m":
        await d.subs.set_market(chat_id, not settings.market)
    elif key == "d":
        await d.subs.set_digest(chat_id, not settings.digest)
    elif key == "l":
        await d.subs.set_lang(chat_id, "zh" if settings.lang == "en" else "en")
    elif key == "s":
        current = int(settings.thresholds.get("_all", {}).get("min_severity", 0))
        await d.subs.set_threshold(chat_id, "_all", "min_severity", (current + 1) % 4)
    elif key == "z":  # one threshold for both directions of the short-ratio rule
        z = float(settings.thresholds.get("short_ratio_spike", {}).get("z", Z_STEPS[0]))
        following = Z_STEPS[(Z_STEPS.index(z) + 1) % len(Z_STEPS)] if z in Z_STEPS else Z_STEPS[0]
        for rule in ("short_ratio_spike", "short_ratio_drop"):
            await d.subs.set_threshold(chat_id, rule, "z", following)


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Commands we do not know get a pointer to /help (in groups only when addressed to us)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or not message.text:
        return
    word = message.text.split()[0]
    bot_name = context.bot.username or ""
    if "@" in word and word.split("@", 1)[1].lower() != bot_name.lower():
        return  # another bot's command
    if chat.type != "private" and "@" not in word:
        return  # groups: stay quiet unless addressed
    d = deps(context)
    settings = await _admitted(d, update, chat, message)
    if settings is not None:
        await send_reply(message, t(settings.lang, "unknown_command", command=esc(word[:40])))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text in a private chat: a stock code or name shows its card; anything else gets a hint."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or chat.type != "private" or not message.text:
        return
    d = deps(context)
    settings = await _admitted(d, update, chat, message)
    if settings is None:
        return
    text = message.text[:MAX_TEXT_IN].strip()
    view = await d.view()
    if 0 < len(text) <= 40 and resolve(text, view.names() or None).code is not None:
        reply = cached_answer(view, "card", [text], settings.lang)
        await send_reply(message, reply.text, card_markup(reply, context.bot))
        return
    await send_reply(message, t(settings.lang, "text_hint"))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first, then tell the admins (through the outbox, so limits apply) and the user."""
    log.error("handler error", exc_info=context.error)
    context.bot_data.setdefault("handler_errors", []).append(redact(repr(context.error)))
    d = context.bot_data.get("deps")
    if not isinstance(d, Deps):
        return
    now = d.clock()
    # Network errors can quote the request URL, which contains the token: redact before cutting to length.
    summary = redact(f"{type(context.error).__name__}: {context.error}")[:400]
    stamp = hashlib.sha256(f"{summary}|{now:%Y%m%d%H%M}".encode()).hexdigest()[:12]
    await notify_admins(
        d.outbox,
        d.settings.admin_chat_ids,
        lambda lang: t(lang, "admin_handler_error", summary=esc(summary)),
        [stamp],
        now,
        subs=d.subs,  # each admin reads the notice in their own language
    )
    if isinstance(update, Update) and update.effective_message is not None:
        chat = update.effective_chat
        lang = await chat_lang(d.subs, chat.id) if chat is not None else "en"
        try:
            await update.effective_message.reply_text(t(lang, "error_generic"), do_quote=False)
        except TelegramError:
            log.warning("could not tell the user about the error")


COMMAND_IMPLS: dict[str, tuple[Impl, bool]] = {
    "start": (cmd_start, False),
    "watch": (cmd_watch, False),
    "unwatch": (cmd_unwatch, False),
    "list": (cmd_list, False),
    "mute": (cmd_mute, False),
    "unmute": (cmd_unmute, False),
    "quiet": (cmd_quiet, False),
    "digest": (cmd_digest, False),
    "lang": (cmd_lang, False),
    "status": (cmd_status, False),
    "settings": (cmd_settings, False),
    "chart": (cmd_chart, False),
    "here": (cmd_here, False),
    "export": (cmd_export, False),
    "import": (cmd_import, False),
    "stats": (cmd_stats, True),
    "broadcast": (cmd_broadcast, True),
    **{name: (_answer_command(name), False) for name in READ_ONLY if name != "start"},
}


def register(app: Application) -> None:
    """Attach every handler to the application."""
    updates = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST  # edited messages are ignored
    for name, (impl, admin) in COMMAND_IMPLS.items():
        app.add_handler(
            CommandHandler(
                name, command(impl, admin=admin, group_admin=name in GROUP_ADMIN_COMMANDS), filters=updates
            )
        )
    # A CSV sent with the caption /import (commands in captions do not reach a CommandHandler).
    caption_import = filters.Document.ALL & filters.CaptionRegex(r"^/import(@\w+)?(\s|$)") & updates
    app.add_handler(MessageHandler(caption_import, command(cmd_import, group_admin=True)))
    app.add_handler(CallbackQueryHandler(on_callback))
    app.add_handler(InlineQueryHandler(on_inline_query))
    app.add_handler(MessageHandler(filters.COMMAND & updates, on_unknown_command))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE, on_text))
    app.add_error_handler(on_error)


def menu(lang: str, names: tuple[str, ...] = MENU) -> list[BotCommand]:
    """The command menu registered with setMyCommands, in `lang` (descriptions from the catalogue)."""
    return [BotCommand(name, t(lang, f"menu.{name}")) for name in names]


def menus(admin_chat_ids: tuple[int, ...]) -> list[tuple[BotCommandScope | None, tuple[str, ...]]]:
    """Each setMyCommands scope with its commands: default (private chats), group members, group administrators,
    and each operator chat (ADMIN_CHAT_IDS). Every scope is registered in English and 繁中 (language "zh")."""
    scopes: list[tuple[BotCommandScope | None, tuple[str, ...]]] = [
        (None, MENU),
        (BotCommandScopeAllGroupChats(), GROUP_MENU),
        (BotCommandScopeAllChatAdministrators(), GROUP_ADMIN_MENU),
    ]
    scopes += [(BotCommandScopeChat(chat), OPERATOR_MENU) for chat in admin_chat_ids]
    return scopes
