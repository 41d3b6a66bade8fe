"""Answers to the bot's read-only commands, as Telegram HTML, from history and alerts (no Telegram here).

The console demo and the Telegram handlers both call `answer(...)`, so a command reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from alerts.calendar import previous_sessions
from alerts.history import History
from alerts.model import Alert
from alerts.replay import HORIZONS, Outcome
from alerts.rules import round_levels
from bot.codes import resolve
from bot.render import CAVEATS, RULE_STYLE, Button, esc

MAX_ARGS = 20


@dataclass
class DataView:
    """What commands read: history up to `today`, alerts so far and their outcomes."""

    history: History
    today: date
    alerts: list[Alert] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def names(self) -> dict[str, str]:
        """Code → latest English name seen in quotes (falls back to other sources)."""
        out: dict[str, str] = {}
        for feed in ("southbound", "sfc", "quotes"):
            frame = self.history.frames[feed]
            out.update(zip(frame["code"].astype(str), frame["name"].astype(str), strict=True))
        return out


@dataclass(frozen=True)
class Reply:
    """A reply: HTML text and optional inline buttons."""

    text: str
    buttons: tuple[Button, ...] = ()


HELP: dict[str, tuple[str, str]] = {
    "start": ("Welcome and a short tour", "/start"),
    "help": ("This list, or help on one command", "/help card"),
    "card": ("The positioning card of a stock: short ratio, SFC position, buybacks, insiders, southbound",
             "/card 1810"),
    "short": ("Short-selling ratio of the last 10 sessions", "/short 700"),
    "buybacks": ("Recent buybacks (of one stock or the market)", "/buybacks 1810"),
    "insiders": ("Recent director / substantial-shareholder dealings", "/insiders xiaomi"),
    "top": ("Today's alerts across the market", "/top"),
    "why": ("What a rule means and its caveats", "/why short_ratio_spike"),
    "history": ("Past alerts on a stock and what the price did after", "/history 9988"),
    "watch": ("Watch stocks: codes (1810, 01810, 1810.HK, HK1810) or names (xiaomi, 小米)", "/watch 1810 700"),
    "unwatch": ("Stop watching stocks", "/unwatch 700"),
    "list": ("Your watchlist", "/list"),
    "settings": ("Which rules alert you, market-wide alerts, digest, language, minimum severity", "/settings"),
    "mute": ("Mute a stock or a rule for a while (30m, 12h, 1d, 2w; default 1d)", "/mute 1810 1d"),
    "unmute": ("Lift a mute", "/unmute 1810"),
    "quiet": ("Quiet hours in Hong Kong time: alerts are held and then sent silently", "/quiet 22:30-07:30"),
    "digest": ("One message a day (08:30) instead of instant alerts", "/digest on"),
    "lang": ("Language: English or 繁體中文", "/lang zh"),
    "status": ("When each data source was last fetched, and any error", "/status"),
}
READ_ONLY = ("start", "help", "card", "short", "buybacks", "insiders", "top", "why", "history")


def answer(view: DataView, command: str, args: list[str]) -> Reply:
    """Dispatch a read-only command; unknown commands and bad arguments get a helpful reply."""
    command = command.lstrip("/").split("@", 1)[0].lower()
    if len(args) > MAX_ARGS:
        return Reply(f"Too many arguments ({len(args)}); at most {MAX_ARGS}.")
    handlers = {"start": _start, "help": _help, "card": _card, "short": _short, "buybacks": _buybacks,
                "insiders": _insiders, "top": _top, "why": _why, "history": _history}
    if command in HELP and command not in READ_ONLY:
        # Commands that change a chat's settings need the bot's store (Redis); the Telegram handlers serve them.
        return Reply(f"/{esc(command)} changes your settings, which this console demo does not keep: "
                     "it works in Telegram.")
    handler = handlers.get(command) if command in READ_ONLY else None
    if handler is None:
        return Reply(f"Unknown command /{esc(command[:32])}. Try /help.")
    return handler(view, args)


def _start(view: DataView, args: list[str]) -> Reply:
    return Reply("👋 <b>positioning-bot</b> tells you when positioning around your stocks turns unusual: "
                 "short-selling spikes, short positions, buybacks, director buys near round numbers, "
                 "southbound holdings.\nTry /card 1810 or /top. /help lists everything.")


def _help(view: DataView, args: list[str]) -> Reply:
    if args:
        name = args[0].lstrip("/").lower()
        if name in HELP:
            text, example = HELP[name]
            return Reply(f"/{name} — {esc(text)}\nExample: <code>{esc(example)}</code>")
        return Reply(f"No command /{esc(name[:32])}. /help lists them all.")
    lines = ["<b>Commands</b>"] + [f"/{name} — {esc(text)} (e.g. <code>{esc(example)}</code>)"
                                   for name, (text, example) in HELP.items()]
    return Reply("\n".join(lines))


def _one_code(view: DataView, args: list[str], usage: str) -> tuple[str | None, Reply | None]:
    if not args:
        return None, Reply(f"Which stock? Usage: <code>{esc(usage)}</code>")
    names = view.names()
    resolved = resolve(" ".join(args), names)
    if resolved.code is None:
        hint = ", ".join(f"{c} {names.get(c, '')}".strip() for c in resolved.suggestions)
        more = f" Did you mean: {esc(hint)}?" if hint else ""
        return None, Reply(f"I don't know the stock {esc(' '.join(args)[:40])!s}.{more}")
    return resolved.code, None


def _rows(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    return frame[frame["code"] == code]


def _card(view: DataView, args: list[str]) -> Reply:
    code, problem = _one_code(view, args, "/card 1810")
    if problem or code is None:
        return problem or Reply("?")
    name = view.names().get(code, "")
    lines = [f"🪪 <b>{esc(code)}</b> {esc(name)} · positioning card"]
    lines += _card_short(view, code) + _card_sfc(view, code) + _card_buybacks(view, code)
    lines += _card_insiders(view, code) + _card_southbound(view, code)
    buttons = (Button("Chart", f"chart:{code}"), Button("Mute 1d", f"mute:{code}:1d"))
    return Reply("\n".join(lines), buttons)


def _card_short(view: DataView, code: str) -> list[str]:
    quotes = _rows(view.history.frames["quotes"], code).dropna(subset=["short_ratio"])
    if quotes.empty:
        return ["📉 Short selling: no data"]
    last = quotes.iloc[-1]
    window = quotes["short_ratio"].iloc[-61:-1].to_numpy(dtype=float)
    ratio = float(last["short_ratio"])
    text = f"📉 Short ratio {ratio * 100:.2f}% on {last['date']:%d/%m}"
    if len(window) >= 20:
        pct = (window < ratio).mean() * 100
        z = (ratio - window.mean()) / max(window.std(), 1e-9)
        text += f" — {pct:.0f}th percentile of {len(window)} sessions, {z:+.1f}σ"
    close = last["close"]
    lines = [text + " (HKEX daily quotations)"]
    if pd.notna(close):
        below, above = round_levels(float(close))
        lines.append(f"💵 Close HK${float(close):,.2f}; round levels HK${below:g} / HK${above:g}")
    return lines


def _card_sfc(view: DataView, code: str) -> list[str]:
    sfc = _rows(view.history.frames["sfc"], code)
    if sfc.empty:
        return ["📊 SFC short position: not reported"]
    last = sfc.iloc[-1]
    text = (f"📊 SFC short position {int(last['short_shares']):,} sh (HK${float(last['short_value_hkd']) / 1e9:.2f}bn)"
            f", as of {last['date']:%a %d/%m}, published about a week later")
    if len(sfc) >= 2:
        prev = float(sfc.iloc[-2]["short_shares"])
        if prev > 0:
            text += f"; w/w {(float(last['short_shares']) / prev - 1) * 100:+.1f}%"
    return [text]


def _card_buybacks(view: DataView, code: str) -> list[str]:
    since = previous_sessions(view.today, 20)[0]
    rows = _rows(view.history.frames["buybacks"], code)
    rows = rows[rows["trade_date"] >= pd.Timestamp(since)]
    if rows.empty:
        return ["💰 Buybacks (20 sessions): none reported"]
    return [f"💰 Buybacks (20 sessions): {rows['trade_date'].nunique()} day(s), {int(rows['shares'].sum()):,} sh, "
            f"HK${rows['total_paid'].sum() / 1e6:,.1f}m, HK${rows['price_low'].min():g}–{rows['price_high'].max():g}"
            f" (HKEX repurchase reports)"]


def _card_insiders(view: DataView, code: str) -> list[str]:
    rows = _rows(view.history.frames["di"], code)
    rows = rows[rows["event_date"] >= pd.Timestamp(view.today) - pd.Timedelta(days=60)]
    if rows.empty:
        return ["👤 Insider dealings (60 days): none disclosed"]
    lines = ["👤 Insider dealings (60 days, HKEX disclosure of interests):"]
    lines += [f"  • {_dealing(row)}" for _, row in rows.tail(5).iterrows()]
    return lines


def _dealing(row: pd.Series) -> str:
    """``24/11 Lei Jun buy 2,600,000 sh @ HKD 38.58`` from a DI row."""
    price = f" @ {row['currency'] if pd.notna(row['currency']) else 'HKD'} {row['avg_price']:g}" \
        if pd.notna(row["avg_price"]) else ""
    shares = f"{int(row['shares']):,}" if pd.notna(row["shares"]) else "?"
    return f"{row['event_date']:%d/%m} {esc(row['holder'])} {esc(row['direction'])} {shares} sh{price}"


def _card_southbound(view: DataView, code: str) -> list[str]:
    rows = _rows(view.history.frames["southbound"], code).dropna(subset=["pct_of_issued"])
    if rows.empty:
        return ["🧭 Southbound: not held"]
    last = rows.iloc[-1]
    text = f"🧭 Southbound holds {float(last['pct_of_issued']):.2f}% on {last['date']:%d/%m}"
    if len(rows) >= 6:
        text += f" ({float(last['pct_of_issued']) - float(rows.iloc[-6]['pct_of_issued']):+.2f}pp in 5 sessions)"
    return [text + " (HKEX Stock Connect)"]


def _short(view: DataView, args: list[str]) -> Reply:
    code, problem = _one_code(view, args, "/short 700")
    if problem or code is None:
        return problem or Reply("?")
    quotes = _rows(view.history.frames["quotes"], code).dropna(subset=["short_ratio"]).tail(10)
    if quotes.empty:
        return Reply(f"No short-selling data for {esc(code)}.")
    lines = [f"📉 <b>{esc(code)}</b> short-selling ratio (short turnover / turnover)"]
    for _, row in quotes.iterrows():
        bar = "█" * int(round(float(row["short_ratio"]) * 40))
        lines.append(f"<code>{row['date']:%d/%m} {float(row['short_ratio']) * 100:5.1f}% {bar}</code>")
    lines.append("ℹ️ " + esc(CAVEATS["short_ratio_spike"]))
    return Reply("\n".join(lines))


def _filter_code(view: DataView, args: list[str], frame: pd.DataFrame) -> tuple[pd.DataFrame, Reply | None]:
    if not args:
        return frame, None
    code, problem = _one_code(view, args, "")
    return (frame.iloc[0:0], problem) if code is None else (frame[frame["code"] == code], None)


def _buybacks(view: DataView, args: list[str]) -> Reply:
    rows, problem = _filter_code(view, args, view.history.frames["buybacks"])
    if problem:
        return problem
    rows = rows.sort_values("trade_date").tail(10)
    if rows.empty:
        return Reply("No buybacks reported in the data I hold.")
    lines = ["💰 <b>Recent buybacks</b>"]
    for _, r in rows.iterrows():
        lines.append(f"{r['trade_date']:%d/%m} <b>{esc(r['code'])}</b> {esc(r['name'])}: {int(r['shares']):,} sh, "
                     f"{esc(r['currency'])} {r['total_paid'] / 1e6:,.1f}m ({esc(r['method'])})")
    return Reply("\n".join(lines))


def _insiders(view: DataView, args: list[str]) -> Reply:
    rows, problem = _filter_code(view, args, view.history.frames["di"])
    if problem:
        return problem
    rows = rows.sort_values("event_date").tail(10)
    if rows.empty:
        return Reply("No director or substantial-shareholder dealings in the data I hold.")
    lines = ["👤 <b>Recent insider dealings</b>"]
    lines += [f"<b>{esc(r['code'])}</b> ({esc(r['role'])}) {_dealing(r)}" for _, r in rows.iterrows()]
    return Reply("\n".join(lines))


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "notice": 2, "info": 3}


def _top(view: DataView, args: list[str]) -> Reply:
    latest = max((a.trade_date for a in view.alerts), default=None)
    if latest is None:
        return Reply("No alerts yet.")
    recent = [a for a in view.alerts if (latest - a.trade_date).days <= 3]
    recent.sort(key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.rule, a.code))
    lines = [f"🏆 <b>Biggest anomalies</b> (to {latest:%d/%m})"]
    for a in recent[:10]:
        emoji = RULE_STYLE.get(a.rule, ("🔔", ""))[0]
        lines.append(f"{emoji} <b>{esc(a.code)}</b> {esc(a.name)} — {esc(a.why)}")
    return Reply("\n".join(lines))


WHY: dict[str, str] = {
    "short_ratio_spike": "Today's short-selling turnover as a share of the stock's turnover is far above its own "
                         "last 60 sessions (z-score and percentile), with turnover and history floors.",
    "short_ratio_drop": "Today's short-selling ratio is far below its own last 60 sessions: less new shorting.",
    "short_position_jump": "The SFC's weekly aggregated reportable short position moved sharply week on week, "
                           "hit a multi-week high, or fell to zero.",
    "buyback_filed": "The company reported buying back its own shares (HKEX daily repurchase report).",
    "insider_buy_near_round_number": "A director or substantial shareholder bought on market at an average "
                                     "price close to a round-number level (e.g. HK$38.58, just under HK$40).",
    "southbound_level": "Mainland investors' Stock Connect holding crossed a level (5%, 10%, …) or moved "
                        "2 percentage points in 5 sessions.",
    "market_short_swing": "Market-wide short-selling value moved 25%+ against the same weekday last week or the "
                          "5-session mean.",
    "confluence": "Two or more different signals on the same stock within 5 sessions.",
    "insider_cluster": "US: two or more different insiders bought the same stock on the open market (Form 4 code P) "
                       "within 10 days, for at least US$100,000 together.",
}


def _why(view: DataView, args: list[str]) -> Reply:
    if not args or args[0].lower() not in WHY:
        return Reply("Which rule? One of: " + ", ".join(f"<code>{r}</code>" for r in WHY))
    rule = args[0].lower()
    emoji, title = RULE_STYLE[rule]
    return Reply(f"{emoji} <b>{esc(title)}</b>\n{esc(WHY[rule])}\nℹ️ {esc(CAVEATS[rule])}")


def _history(view: DataView, args: list[str]) -> Reply:
    code, problem = _one_code(view, args, "/history 9988")
    if problem or code is None:
        return problem or Reply("?")
    alerts = [a for a in view.alerts if a.code == code][-10:]
    if not alerts:
        return Reply(f"No past alerts on {esc(code)}.")
    lines = [f"🕰 <b>{esc(code)}</b> past alerts and the move after"]
    for a in alerts:
        out = view.outcomes.get(a.fingerprint)
        moves = "  ".join(
            f"{h}d {'n/a' if out is None or out.moves[h] is None else f'{out.moves[h] * 100:+.1f}%'}"
            for h in HORIZONS)
        lines.append(f"{a.trade_date:%d/%m} {esc(a.rule)}: {esc(moves)}")
    return Reply("\n".join(lines))

