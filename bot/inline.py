"""Inline mode: ``@bot 1810`` (or 小米, XIAOMI, AAPL) in any chat offers the stock's card and its short-ratio chart.

The card is an article whose message is the card's HTML; the chart is offered as a cached photo only when Telegram
already holds it (a file_id from an earlier /chart or alert of the same data day): nothing is drawn or uploaded
while someone types. Results are computed once per data view, stock and language (DataView.memo, so new data give
new results) and answered with `is_personal`, since each user reads them in their own language. Buttons are deep
links only: a callback button under a message sent via the bot would act on the presser's own chat.
"""

from __future__ import annotations

import logging

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputTextMessageContent,
    LinkPreviewOptions,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from alerts.store import keys
from bot.answers import answer
from bot.codes import resolve
from bot.deeplinks import bot_username, keyboard, watch_button
from bot.deps import Deps, deps
from bot.html import MAX_TEXT, clip, esc
from bot.i18n import normalize_lang, t
from bot.view import DataView

log = logging.getLogger(__name__)

MAX_QUERY = 64  # characters of an inline query looked at (Telegram sends up to 256)
CACHE_SECONDS = 300  # Telegram keeps an answer this long per query (and per user: is_personal)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Result = InlineQueryResultArticle | InlineQueryResultCachedPhoto


async def user_lang(d: Deps, user: User | None) -> str:
    """The language of the user's private chat with the bot, else their Telegram app's language."""
    if user is None:
        return "en"
    if await d.redis.exists(keys.chat_settings(user.id)):
        return (await d.subs.settings(user.id)).lang
    return normalize_lang(user.language_code)


def help_article(lang: str, username: str | None, *, text: str = "") -> InlineQueryResultArticle:
    """The one result for an empty query, or a query naming no stock."""
    bot = f"@{username}" if username else "@bot"
    title = t(lang, "inline.none_title", text=text[:32]) if text else t(lang, "inline.help_title")
    return InlineQueryResultArticle(
        id=f"help:{lang}:{int(bool(text))}",
        title=title,
        description=t(lang, "inline.help_description", bot=bot),
        input_message_content=InputTextMessageContent(
            t(lang, "inline.help_text", bot=esc(bot)),
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
        ),
    )


def card_article(view: DataView, code: str, lang: str, username: str | None) -> InlineQueryResultArticle:
    """The stock's card as an article (computed once per view, stock and language)."""

    def build() -> InlineQueryResultArticle:
        reply = view.memo(("answer", "card", (code,), lang), lambda: answer(view, "card", [code], lang))
        name = view.names(lang).get(code, "")
        watch = watch_button(t(lang, "button.watch"), code)
        return InlineQueryResultArticle(
            id=f"card:{code}:{lang}",
            title=f"{code} {name}".strip(),
            description=t(lang, "inline.card_description"),
            input_message_content=InputTextMessageContent(
                clip(reply.text, MAX_TEXT), parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
            ),
            reply_markup=keyboard([watch] if watch else [], username),
        )

    return view.memo(("inline", code, lang, username), build)


async def inline_results(d: Deps, text: str, lang: str, username: str | None) -> list[Result]:
    """What to offer for the query `text`: the card and, when Telegram holds it, the short-ratio chart."""
    text = text.strip()[:MAX_QUERY]
    if not text:
        return [help_article(lang, username)]
    view = await d.view()
    code = resolve(text, view.names() or None).code
    if code is None:
        return [help_article(lang, username, text=text)]
    results: list[Result] = [card_article(view, code, lang, username)]
    photo = await d.charts().cached_photo(code, "short", lang)
    if photo is not None:
        file_id, caption = photo
        watch = watch_button(t(lang, "button.watch"), code)
        results.append(
            InlineQueryResultCachedPhoto(
                id=f"chart:{code}:{lang}",
                photo_file_id=file_id,
                title=t(lang, "chart.kind.short"),
                caption=caption,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard([watch] if watch else [], username),
            )
        )
    return results


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer an inline query (every query is answered, an unknown one with the help article)."""
    query = update.inline_query
    if query is None:
        return
    d = deps(context)
    lang = await user_lang(d, query.from_user)
    results = await inline_results(d, query.query, lang, bot_username(context.bot))
    await query.answer(results, cache_time=CACHE_SECONDS, is_personal=True)
