"""Answers to the bot's read-only commands, as Telegram HTML, from history and alerts (no Telegram here).

The console demo and the Telegram handlers both call `answer(view, command, args, lang)`, so a command reads the
same everywhere. Every string comes from the message catalogue (bot/locales/*/card.po, ids ``ans.*``) and every
number and date is formatted for the language (bot.i18n); the figures come from alerts.positioning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from alerts import positioning as pos
from alerts.calendar import previous_sessions
from alerts.model import Alert
from alerts.replay import HORIZONS, Outcome, ReplayResult, base_day, expected_direction, known_day, summarize
from alerts.rules import KINDS
from alerts.rules.context import ordinal
from alerts.sources.hkexnews_announcements import CATEGORIES as ANNOUNCEMENT_CATEGORIES
from bot.codes import resolve
from bot.html import esc
from bot.i18n import day, has, pct, pp, price, shares, sign, signed_money, t
from bot.render import Button, caveat, rule_emoji, rule_title, why_text
from bot.view import DataView

MAX_ARGS = 20
HISTORY_SHOWN = 15
MAX_DEALINGS = 5
LAST_KINDS = 6  # kinds of alert the card's "last alerts" line names, the most recent first
# Characters of an announcement title on /card (the line links the PDF for the rest).
CARD_TITLE_CHARS = 80


@dataclass(frozen=True)
class Reply:
    """A reply: HTML text and optional inline buttons."""

    text: str
    buttons: tuple[Button, ...] = ()
    code: str = ""  # the stock the reply is about (a card): the Telegram side adds its Watch deep link
    lang: str = "en"


# The commands /help lists, in order; each has the catalogue messages ans.help.<name> and ans.help.<name>.example.
HELP: tuple[str, ...] = (
    "start",
    "help",
    "card",
    "flows",
    "chart",
    "short",
    "buybacks",
    "insiders",
    "top",
    "why",
    "history",
    "watch",
    "unwatch",
    "list",
    "settings",
    "mute",
    "unmute",
    "quiet",
    "digest",
    "lang",
    "status",
    "export",
    "import",
    "here",
)
READ_ONLY = ("start", "help", "card", "flows", "short", "buybacks", "insiders", "top", "why", "history")
# Rules /why explains (ans.why.<rule>.text; titles and caveats are the alerts' own, from bot.render).
WHY_RULES: tuple[str, ...] = tuple(KINDS)  # every alert kind, from the rules' specs

Handler = Callable[[DataView, list[str], str], Reply]


def answer(view: DataView, command: str, args: list[str], lang: str = "en") -> Reply:
    """Dispatch a read-only command in `lang`; unknown commands and bad arguments get a helpful reply."""
    command = command.lstrip("/").split("@", 1)[0].lower()
    if len(args) > MAX_ARGS:
        return Reply(t(lang, "ans.too_many_args", n=len(args), limit=MAX_ARGS))
    handlers: dict[str, Handler] = {
        "start": _start,
        "help": _help,
        "card": _card,
        "flows": _flows,
        "short": _short,
        "buybacks": _buybacks,
        "insiders": _insiders,
        "top": _top,
        "why": _why,
        "history": _history,
    }
    if command == "chart":
        return Reply(t(lang, "ans.console_chart"))
    if command in HELP and command not in READ_ONLY:
        # Commands that change a chat's settings need the bot's store (Redis); the Telegram handlers serve them.
        return Reply(t(lang, "ans.console_settings", command=esc(command)))
    handler = handlers.get(command)
    if handler is None:
        return Reply(t(lang, "ans.unknown_command", command=esc(command[:32])))
    return handler(view, args, lang)


def _start(view: DataView, args: list[str], lang: str) -> Reply:
    return Reply(t(lang, "ans.start"))


def _help(view: DataView, args: list[str], lang: str) -> Reply:
    if args:
        name = args[0].lstrip("/").lower()
        if name in HELP:
            return Reply(
                t(
                    lang,
                    "ans.help_one",
                    name=name,
                    text=t(lang, f"ans.help.{name}"),
                    example=t(lang, f"ans.help.{name}.example"),
                )
            )
        return Reply(t(lang, "ans.help_unknown", name=esc(name[:32])))
    lines = [t(lang, "ans.help_header")] + [
        t(
            lang,
            "ans.help_line",
            name=name,
            text=t(lang, f"ans.help.{name}"),
            example=t(lang, f"ans.help.{name}.example"),
        )
        for name in HELP
    ]
    return Reply("\n".join(lines))


def _one_code(view: DataView, args: list[str], lang: str, usage: str) -> tuple[str | None, Reply | None]:
    if not args:
        return None, Reply(t(lang, "ans.which_stock", usage=f"<code>{esc(usage)}</code>"))
    names = view.names()
    resolved = resolve(" ".join(args), names)
    if resolved.code is None:
        shown = view.names(lang)
        text = t(lang, "ans.unknown_stock", text=f"<code>{esc(' '.join(args)[:40])}</code>")
        if resolved.suggestions:
            options = ", ".join(esc(f"{c} {shown.get(c, '')}".strip()) for c in resolved.suggestions)
            text += t(lang, "ans.did_you_mean", options=options)
        return None, Reply(text)
    return resolved.code, None


def _title(view: DataView, code: str, lang: str) -> tuple[str, str]:
    return esc(code), esc(view.names(lang).get(code, ""))


def _src(lang: str, source: str, when: date) -> str:
    """`` · source, date`` in italics: every card section says where and when its figures come from."""
    return " " + t(lang, "ans.src", source=t(lang, f"ans.src.{source}"), day=day(lang, when))


def _signed_pct(lang: str, value: float | None, digits: int = 1) -> str:
    return t(lang, "ans.na") if value is None else pct(lang, value, digits, signed=True)


def _share(lang: str, value: float | None) -> str:
    return t(lang, "ans.na") if value is None else pct(lang, value, 1)


def _money(lang: str, amount: float | None, currency: str = "HKD", *, signed: bool = False) -> str:
    """An amount (bot.i18n.signed_money), or "n/a" when the figure is missing."""
    return t(lang, "ans.na") if amount is None else signed_money(lang, amount, currency, plus=signed)


def _card(view: DataView, args: list[str], lang: str) -> Reply:
    code, problem = _one_code(view, args, lang, "/card 1810")
    if problem or code is None:
        return problem or Reply("?")
    frames = view.frames()
    code_html, name = _title(view, code, lang)
    lines = [t(lang, "ans.card.title", code=code_html, name=name)]
    lines += _card_short(frames, code, lang) + _card_sfc(frames, code, lang)
    lines += _card_buybacks(view, frames, code, lang) + _card_insiders(view, frames, code, lang)
    lines += _card_southbound(frames, code, lang) + _card_southbound_flow(frames, code, lang)
    lines += _card_price(frames, code, lang)
    lines += _card_shortable(frames, code, lang) + _card_flows(frames, code, lang)
    lines += _card_announcement(frames, code, lang) + _card_last_alerts(view, code, lang)
    buttons = (
        Button(t(lang, "button.chart"), f"chart:{code}"),
        Button(t(lang, "button.mute_1d"), f"mute:{code}:1d"),
    )
    return Reply("\n".join(lines), buttons, code=code, lang=lang)


def _card_announcement(frames: pos.Frames, code: str, lang: str) -> list[str]:
    """The stock's last corporate-finance announcement (placing, rights issue, buyback return…), when there is one."""
    frame = frames.get("announcements")
    if frame is None or not len(frame):
        return []
    mine = frame[(frame["code"] == code).fillna(False) & (frame["category"] != "other").fillna(False)]
    if not len(mine):
        return []
    last = mine.sort_values("released_at", kind="stable").iloc[-1]
    title = str(last["title"])
    short = title if len(title) <= CARD_TITLE_CHARS else title[: CARD_TITLE_CHARS - 1].rstrip() + "…"
    category = str(last["category"])
    key = f"category.{category}"
    return [
        t(
            lang,
            "ans.card.corporate_finance",
            date=day(lang, pd.Timestamp(last["released_at"]).date()),
            category=t(lang, key) if has(key) else esc(category),
            title=esc(short),
            link=f'<a href="{esc(str(last["url"]))}">PDF</a>',
        )
    ]


def _card_short(frames: pos.Frames, code: str, lang: str) -> list[str]:
    figures = pos.short_figures(frames, code)
    if figures is None:
        return [t(lang, "ans.card.short_none")]
    if figures.percentile is not None and figures.z is not None and figures.window >= 20:
        rank = t(
            lang,
            "ans.card.rank",
            rank=ordinal(int(figures.percentile)) if lang == "en" else str(int(figures.percentile)),
            n=figures.window,
            z=f"{figures.z:+.1f}σ",
        )
    else:
        rank = t(lang, "ans.card.rank_short", n=figures.window)
    lines = [
        t(
            lang,
            "ans.card.short",
            ratio=pct(lang, figures.ratio * 100, 1),
            short=_money(lang, figures.short_value),
            turnover=_money(lang, figures.turnover),
            rank=rank,
        )
        + _src(lang, "quotes", figures.day)
    ]
    session = pos.session_short(frames, code)
    if session is not None and session.close is not None and session.midday is not None:
        share = session.midday / session.close * 100 if session.close else None
        lines.append(
            t(
                lang,
                "ans.card.session",
                midday=_money(lang, session.midday),
                close=_money(lang, session.close),
                share=_share(lang, share),
            )
            + _src(lang, "short", session.day)
        )
    elif session is not None and (session.close is not None or session.midday is not None):
        key = "ans.card.session_close" if session.close is not None else "ans.card.session_midday"
        value = session.close if session.close is not None else session.midday
        lines.append(t(lang, key, value=_money(lang, value)) + _src(lang, "short", session.day))
    return lines


def _card_sfc(frames: pos.Frames, code: str, lang: str) -> list[str]:
    figures = pos.sfc_figures(frames, code)
    if figures is None:
        return [t(lang, "ans.card.sfc_none")]
    issued = (
        t(lang, "ans.card.of_issued", pct=pct(lang, figures.pct_of_issued, 2))
        if figures.pct_of_issued is not None
        else t(lang, "ans.card.issued_unknown")
    )
    text = t(
        lang,
        "ans.card.sfc",
        shares=shares(lang, figures.shares),
        value=_money(lang, figures.value),
        issued=issued,
        change=_signed_pct(lang, figures.change_pct),
        asof=day(lang, figures.day),
    )
    return [text + _src(lang, "sfc", figures.day)]


def _card_buybacks(view: DataView, frames: pos.Frames, code: str, lang: str) -> list[str]:
    sessions = previous_sessions(view.today, pos.BUYBACK_SESSIONS)
    figures = pos.buyback_figures(frames, code, sessions)
    if figures is None:
        return [
            t(lang, "ans.card.buybacks_none", since=day(lang, sessions[0]))
            + _src(lang, "buybacks", view.today)
        ]
    prices = (
        t(lang, "ans.na")
        if figures.low is None or figures.high is None
        else f"{price(lang, figures.low, figures.currency)}–{price(lang, figures.high, figures.currency)}"
    )
    text = t(
        lang,
        "ans.card.buybacks",
        days=figures.days,
        shares=shares(lang, figures.shares),
        amount=_money(lang, figures.amount, figures.currency),
        prices=prices,
    )
    return [text + _src(lang, "buybacks", figures.last_report)]


def _dealing(lang: str, dealing: pos.Dealing) -> str:
    """``Mon 24/11 Lei Jun (director) bought 2,600,000 sh at avg HK$38.58``."""
    role = (
        t(lang, f"ans.role.{dealing.role}")
        if dealing.role in ("director", "substantial_shareholder")
        else esc(dealing.role)
    )
    direction = (
        t(lang, f"ans.dir.{dealing.direction}")
        if dealing.direction in ("buy", "sell")
        else esc(dealing.direction)
    )
    count = t(lang, "ans.na") if dealing.shares is None else shares(lang, dealing.shares)
    avg = t(lang, "ans.na") if dealing.avg_price is None else price(lang, dealing.avg_price, dealing.currency)
    return t(
        lang,
        "ans.dealing",
        day=day(lang, dealing.event_date),
        holder=esc(dealing.holder[:60]),
        role=role,
        direction=direction,
        shares=count,
        price=avg,
    )


def _card_insiders(view: DataView, frames: pos.Frames, code: str, lang: str) -> list[str]:
    found = pos.dealings(frames, code, view.today)
    if not found:
        return [t(lang, "ans.card.insiders_none") + _src(lang, "di", view.today)]
    latest = max(d.filed_date for d in found)
    lines = [t(lang, "ans.card.insiders", n=len(found)) + _src(lang, "di", latest)]
    lines += [f"  • {_dealing(lang, d)}" for d in found[-MAX_DEALINGS:]]
    return lines


def _card_southbound(frames: pos.Frames, code: str, lang: str) -> list[str]:
    figures = pos.southbound_figures(frames, code)
    if figures is None:
        return [t(lang, "ans.card.southbound_none")]
    change = t(lang, "ans.na") if figures.change_pp is None else pp(lang, figures.change_pp)
    text = t(
        lang,
        "ans.card.southbound",
        pct=pct(lang, figures.pct, 2),
        shares=shares(lang, figures.shares),
        change=change,
    )
    return [text + _src(lang, "southbound", figures.day)]


def _card_shortable(frames: pos.Frames, code: str, lang: str) -> list[str]:
    """Whether the stock is on HKEX's short-selling list in effect, and since which revision when history says."""
    status = pos.shortable_status(frames, code)
    if status is None:
        return []  # no list loaded: no claim either way
    if not status.listed:
        return [t(lang, "ans.card.shortable_off", list_date=day(lang, status.list_date))]
    if status.since is None:
        return [t(lang, "ans.card.shortable_on_seen", list_date=day(lang, status.list_date))]
    return [t(lang, "ans.card.shortable_on", since=day(lang, status.since))]


def _card_southbound_flow(frames: pos.Frames, code: str, lang: str) -> list[str]:
    """The latest day the stock was in a southbound top 10: the day's net buying (no line when never)."""
    figures = pos.southbound_turnover(frames, code)
    if figures is None:
        return []
    text = t(
        lang,
        "ans.card.southbound_flow",
        net=_money(lang, figures.net, signed=True),
        buy=_money(lang, figures.buy),
        sell=_money(lang, figures.sell),
        day=day(lang, figures.day),
    )
    return [text + _src(lang, "southbound_flow", figures.day)]


def _card_price(frames: pos.Frames, code: str, lang: str) -> list[str]:
    figures = pos.price_figures(frames, code)
    if figures is None:
        return [t(lang, "ans.card.price_none")]
    text = t(
        lang,
        "ans.card.price",
        close=price(lang, figures.close, figures.currency),
        below=price(lang, figures.below, figures.currency),
        above=price(lang, figures.above, figures.currency),
    )
    return [text + _src(lang, "quotes", figures.day)]


def _card_flows(frames: pos.Frames, code: str, lang: str) -> list[str]:
    days = pos.flow_days(frames, code)
    if not days:
        return [t(lang, "ans.card.flows_none")]
    flows = pos.flows(frames, code, days[-1])
    text = t(
        lang,
        "ans.card.flows",
        turnover=_money(lang, flows.turnover),
        short=_share(lang, flows.share(flows.short_value)),
        south=_signed_pct(lang, flows.share(flows.southbound_net)),
        buyback=_share(lang, flows.share(flows.buyback)),
        rest=_share(lang, flows.share(flows.remainder)),
        code=esc(code.lstrip("0")),
    )
    return [text + _src(lang, "flows", flows.day)]


def _card_last_alerts(view: DataView, code: str, lang: str) -> list[str]:
    """When the last alert of each kind was on this stock (live or found by a backfill), the most recent first."""
    latest: dict[str, Alert] = {}
    for alert in view.alerts:
        if alert.code != code or known_day(alert) > view.today:  # not known yet on the view's day
            continue
        held = latest.get(alert.rule)
        if held is None or alert.trade_date > held.trade_date:
            latest[alert.rule] = alert
    code_text = esc(code.lstrip("0"))
    if not latest:
        return [t(lang, "ans.card.last_alerts_none", code=code_text)]
    shown = sorted(latest.values(), key=lambda a: (a.trade_date, a.rule), reverse=True)[:LAST_KINDS]
    items = [
        t(
            lang,
            "ans.card.last_alert",
            emoji=rule_emoji(a.rule),
            title=_rule_title(lang, a.rule),
            day=day(lang, a.trade_date),
        )
        for a in shown
    ]
    return [t(lang, "ans.card.last_alerts", alerts=" · ".join(items), code=code_text)]


_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DM_RE = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{4}))?$")


def parse_day(text: str, today: date) -> date | None:
    """``2025-11-21``, ``21/11`` (the latest such date on or before `today`) or ``21/11/2025``; else None."""
    try:
        if match := _ISO_RE.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _DM_RE.match(text):
            year = int(match[3]) if match[3] else today.year
            found = date(year, int(match[2]), int(match[1]))
            return found.replace(year=year - 1) if not match[3] and found > today else found
    except ValueError:
        return None
    return None


def _looks_like_date(text: str) -> bool:
    return bool(re.match(r"^\d{1,4}[-/]\d{1,2}(?:[-/]\d{1,4})?$", text))


def _flows(view: DataView, args: list[str], lang: str) -> Reply:
    when: date | None = None
    if len(args) >= 2 and _looks_like_date(args[-1]):
        when = parse_day(args[-1], view.today)
        if when is None:
            return Reply(t(lang, "ans.flows.bad_date", text=f"<code>{esc(args[-1][:20])}</code>"))
        args = args[:-1]
    code, problem = _one_code(view, args, lang, "/flows 1810")
    if problem or code is None:
        return problem or Reply("?")
    frames = view.frames()
    days = pos.flow_days(frames, code)
    code_html, name = _title(view, code, lang)
    if not days:
        return Reply(t(lang, "ans.flows.no_data", code=code_html))
    when = when or days[-1]
    if when not in days:
        return Reply(
            t(
                lang,
                "ans.flows.no_day",
                code=code_html,
                day=day(lang, when),
                first=day(lang, days[0]),
                last=day(lang, days[-1]),
            )
        )
    return Reply(_flows_text(pos.flows(frames, code, when), code_html, name, lang))


def _flows_text(flows: pos.Flows, code_html: str, name: str, lang: str) -> str:
    """The flows arithmetic, one line per part, amounts and % of turnover."""
    na = t(lang, "ans.na")
    close = na if flows.close is None else price(lang, flows.close)
    lines = [
        t(lang, "ans.flows.header", code=code_html, name=name, day=day(lang, flows.day)),
        t(lang, "ans.flows.turnover", amount=_money(lang, flows.turnover), close=close),
        t(
            lang,
            "ans.flows.short",
            amount=_money(lang, flows.short_value),
            share=_share(lang, flows.share(flows.short_value)),
        ),
    ]
    if (
        flows.southbound_kind == "turnover"
        and flows.southbound_net is not None
        and flows.southbound_buy is not None
        and flows.southbound_sell is not None
    ):
        lines.append(
            t(
                lang,
                "ans.flows.southbound_turnover",
                amount=_money(lang, flows.southbound_net, signed=True),
                share=_signed_pct(lang, flows.share(flows.southbound_net)),
                buy=_money(lang, flows.southbound_buy),
                sell=_money(lang, flows.southbound_sell),
            )
        )
    elif (
        flows.southbound_net is not None
        and flows.southbound_shares_change is not None
        and flows.southbound_base is not None
    ):
        change = sign(flows.southbound_shares_change) + shares(lang, abs(flows.southbound_shares_change))
        lines.append(
            t(
                lang,
                "ans.flows.southbound",
                change=change,
                close=close,
                amount=_money(lang, flows.southbound_net, signed=True),
                share=_signed_pct(lang, flows.share(flows.southbound_net)),
                base=day(lang, flows.southbound_base),
            )
        )
    else:
        lines.append(t(lang, "ans.flows.southbound_na"))
    if (
        flows.southbound_kind != "turnover"
    ):  # say plainly that the real same-day figures are not used, and why
        key = "ans.flows.southbound_outside_top10" if flows.daily_file else "ans.flows.southbound_no_daily"
        lines.append(t(lang, key, day=day(lang, flows.day)))
    lines.append(
        t(
            lang,
            "ans.flows.buyback",
            amount=_money(lang, flows.buyback),
            share=_share(lang, flows.share(flows.buyback)),
        )
    )
    lines.append(
        t(
            lang,
            "ans.flows.remainder",
            amount=_money(lang, flows.remainder),
            share=_share(lang, flows.share(flows.remainder)),
        )
    )
    lines.append(t(lang, "ans.flows.sources", day=day(lang, flows.day)))
    lines.append(t(lang, "ans.flows.caveat"))
    return "\n".join(lines)


def _short(view: DataView, args: list[str], lang: str) -> Reply:
    code, problem = _one_code(view, args, lang, "/short 700")
    if problem or code is None:
        return problem or Reply("?")
    quotes = view.frames()["quotes"]
    quotes = quotes[(quotes["code"] == code) & quotes["short_ratio"].notna()].tail(10)
    code_html, name = _title(view, code, lang)
    if quotes.empty:
        return Reply(t(lang, "ans.short.none", code=code_html))
    lines = [t(lang, "ans.short.header", code=code_html, name=name)]
    for _, row in quotes.iterrows():
        ratio = float(row["short_ratio"])
        bar = "█" * int(round(ratio * 40))
        when = f"{row['date']:%d/%m}"
        lines.append(f"<code>{when} {esc(pct(lang, ratio * 100, 1)):>6} {bar}</code>")
    lines.append(t(lang, "ans.short.source", day=day(lang, quotes.iloc[-1]["date"])))
    lines.append("ℹ️ " + esc(caveat("short_ratio_spike", lang) or ""))
    return Reply("\n".join(lines))


def _filter_code(
    view: DataView, args: list[str], frame: pd.DataFrame, lang: str, usage: str
) -> tuple[pd.DataFrame, Reply | None]:
    if not args:
        return frame, None
    code, problem = _one_code(view, args, lang, usage)
    return (frame.iloc[0:0], problem) if code is None else (frame[frame["code"] == code], None)


def _buybacks(view: DataView, args: list[str], lang: str) -> Reply:
    rows, problem = _filter_code(view, args, view.frames()["buybacks"], lang, "/buybacks 1810")
    if problem:
        return problem
    rows = rows.sort_values("trade_date", kind="stable").tail(10)
    if rows.empty:
        return Reply(t(lang, "ans.buybacks.none"))
    names = view.names(lang)
    lines = [t(lang, "ans.buybacks.header")]
    for _, r in rows.iterrows():
        currency = str(r["currency"]) if pd.notna(r["currency"]) else "HKD"
        lines.append(
            t(
                lang,
                "ans.buybacks.line",
                day=day(lang, r["trade_date"]),
                code=esc(r["code"]),
                name=esc(names.get(str(r["code"]), r["name"])),
                shares=shares(lang, float(r["shares"])),
                amount=_money(lang, float(r["total_paid"]), currency),
                low=price(lang, float(r["price_low"]), currency),
                high=price(lang, float(r["price_high"]), currency),
            )
        )
    lines.append(t(lang, "ans.buybacks.source", day=day(lang, rows["report_date"].max())))
    return Reply("\n".join(lines))


def _insiders(view: DataView, args: list[str], lang: str) -> Reply:
    frame = view.frames()["di"]
    rows, problem = _filter_code(view, args, frame, lang, "/insiders 1810")
    if problem:
        return problem
    rows = rows.sort_values("event_date", kind="stable").tail(10)
    if rows.empty:
        return Reply(t(lang, "ans.insiders.none"))
    lines = [t(lang, "ans.insiders.header")]
    lines += [f"<b>{esc(code)}</b> {_dealing(lang, d)}" for code, d in pos.to_dealings(rows)]
    lines.append(t(lang, "ans.insiders.source", day=day(lang, rows["filed_date"].max())))
    return Reply("\n".join(lines))


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "notice": 2, "info": 3}


def _rule_title(lang: str, rule: str) -> str:
    return esc(rule_title(rule, lang))


def _top(view: DataView, args: list[str], lang: str) -> Reply:
    # Pushed alerts only: what a backfill found in the past is history (/history), not today's anomalies.
    alerts = [a for a in view.alerts if a.trade_date <= view.today and a.fingerprint not in view.historical]
    latest = max((a.trade_date for a in alerts), default=None)
    if latest is None:
        return Reply(t(lang, "ans.top.none"))
    recent = [a for a in alerts if (latest - a.trade_date).days <= 3]
    recent.sort(key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.rule, a.code))
    names = view.names(lang)
    lines = [t(lang, "ans.top.header", day=day(lang, latest))]
    for a in recent[:10]:
        who = t(lang, "ans.market") if a.code == "MARKET" else esc(names.get(a.code, a.name))
        lines.append(
            t(
                lang,
                "ans.top.line",
                emoji=rule_emoji(a.rule),
                code=esc(a.code),
                name=who,
                detail=esc(why_text(a, lang)),
            )
        )
    return Reply("\n".join(lines))


def _why(view: DataView, args: list[str], lang: str) -> Reply:
    if not args or args[0].lower() not in WHY_RULES:
        return Reply(t(lang, "ans.why.usage", rules=", ".join(f"<code>{r}</code>" for r in WHY_RULES)))
    rule = args[0].lower()
    return Reply(
        t(
            lang,
            "ans.why.body",
            emoji=rule_emoji(rule),
            title=_rule_title(lang, rule),
            text=t(lang, f"ans.why.{rule}.text"),
            caveat=esc(caveat(rule, lang) or ""),
        )
    )


def _move(lang: str, outcome: Outcome | None, horizon: int) -> str:
    value = None if outcome is None else outcome.moves.get(horizon)
    return t(
        lang, "ans.history.move", h=horizon, move=_signed_pct(lang, None if value is None else value * 100)
    )


def _history(view: DataView, args: list[str], lang: str) -> Reply:
    code, problem = _one_code(view, args, lang, "/history 9988")
    if problem or code is None:
        return problem or Reply("?")
    code_html, name = _title(view, code, lang)
    # Only what could have been pushed by `today`: an SFC position shows from its publication, not its date.
    alerts = sorted(
        (a for a in view.alerts if a.code == code and known_day(a) <= view.today),
        key=lambda a: (a.trade_date, a.rule),
        reverse=True,
    )
    if not alerts:
        return Reply(t(lang, "ans.history.none", code=code_html))
    shown = alerts[:HISTORY_SHOWN]
    lines = [t(lang, "ans.history.header", code=code_html, name=name, shown=len(shown), total=len(alerts))]
    for a in shown:
        outcome = view.outcomes.get(a.fingerprint)
        moves = " · ".join(_move(lang, outcome, h) for h in HORIZONS)
        line = t(
            lang,
            "ans.history.line",
            day=day(lang, a.trade_date),
            emoji=rule_emoji(a.rule),
            title=_rule_title(lang, a.rule),
            moves=moves,
        )
        # Found by a backfill's replay over the stored files: it was never pushed to anyone.
        lines.append(line + t(lang, "ans.history.found") if a.fingerprint in view.historical else line)
    lines.append(t(lang, "ans.history.rates_header"))
    lines += _hit_rates(view, alerts, lang)
    lines.append(t(lang, "ans.history.caveat"))
    return Reply("\n".join(lines))


def _hit_rates(view: DataView, alerts: list[Alert], lang: str) -> list[str]:
    """Per-rule hit rates of a stock's alerts, by the replay engine's own summary."""
    missing = Outcome(None, {h: None for h in HORIZONS})
    since = min(
        base_day(a) for a in alerts
    )  # the base rate's window: from the first alert's base close to today
    closes = view.memo(("closes",), view.history.closes)
    result = ReplayResult(
        alerts=[(a.trade_date, a) for a in alerts],
        outcomes={a.fingerprint: view.outcomes.get(a.fingerprint, missing) for a in alerts},
        start=since,
        end=view.today,
        closes=closes,
    )
    lines = []
    for row in summarize(result):
        title = _rule_title(lang, row.rule)
        if row.hit_rate is not None:
            hits = int(round(row.hit_rate * row.hits_counted))
            lines.append(
                t(
                    lang,
                    "ans.history.rate",
                    title=title,
                    hits=hits,
                    judged=row.hits_counted,
                    count=row.count,
                    rate=pct(lang, row.hit_rate * 100, 0),
                )
            )
            if (
                row.base_rate is not None
            ):  # a 60% hit rate means little if the stock rose 60% of the time anyway
                lines.append(
                    t(
                        lang,
                        "ans.history.base",
                        rate=pct(lang, row.base_rate * 100, 0),
                        n=row.base_counted,
                        since=day(lang, since),
                    )
                )
        elif _has_direction(row.rule, alerts):
            lines.append(t(lang, "ans.history.rate_pending", title=title, count=row.count))
        else:
            lines.append(t(lang, "ans.history.rate_nodir", title=title, count=row.count))
    return lines


def _has_direction(rule: str, alerts: list[Alert]) -> bool:
    return any(expected_direction(a) is not None for a in alerts if a.rule == rule)


def catalogue_keys() -> Mapping[str, tuple[str, ...]]:
    """The dynamically built message ids, by family (tests check each exists in the catalogue)."""
    return {
        "help": tuple(k for n in HELP for k in (f"ans.help.{n}", f"ans.help.{n}.example")),
        "why": tuple(f"ans.why.{r}.text" for r in WHY_RULES),
        "src": tuple(
            f"ans.src.{s}"
            for s in ("quotes", "short", "sfc", "buybacks", "di", "southbound", "southbound_flow", "flows")
        ),
        "role": ("ans.role.director", "ans.role.substantial_shareholder"),
        "dir": ("ans.dir.buy", "ans.dir.sell"),
        "category": tuple(f"category.{c}" for c in ANNOUNCEMENT_CATEGORIES),
    }
