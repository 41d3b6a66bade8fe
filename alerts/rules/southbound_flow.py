"""southbound_net_flow: a stock's same-day southbound net buying (or selling) unusually large, or long one-sided.

Reads the `southbound_flow` feed (source hkex-stock-connect-daily): the day's top 10 stocks of each southbound
channel (Shanghai and Shenzhen Connect) with their buy and sell turnover in HK$. A stock's figure for a day is
the sum over both channels (a stock often sits in both top 10s); a stock outside both has no figure that day.

- net = buy − sell (HK$), positive when mainland investors bought more than they sold through Stock Connect.
- history = the stock's nets on its `window` latest earlier days in the top 10, within `max_lookback_sessions`
  XHKG sessions: only days it appeared (the file names no other).
- z = (net − history mean) / max(population std, `std_floor_hkd`); percentile = 100 × (history nets strictly
  below today's net) / history size.
- "large:buy": net >= `min_net_hkd`, z >= `min_abs_z`, percentile >= `min_percentile`; "large:sell": net <=
  −`min_net_hkd`, z <= −`min_abs_z`, percentile <= 100 − `min_percentile`. A net past the floor with fewer than
  `min_history` earlier days is a Note, not an alert.
- "streak:buy" / "streak:sell": the stock's net had one sign on each of the last `streak_sessions` southbound
  file dates (today's included, none skipped) and not on the date before: it fires on the day the run reaches
  the length, once a run.

Point in time: only rows of files dated up to `ctx.day` and, when the frame says when each row became known
(`published_at`), known by `ctx.moment`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    as64,
    days64,
    floats,
    money,
    ordinal,
    published,
    quiet,
    rounded,
    sessions_back,
    strings,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec
from alerts.sources.hkex_stock_connect_daily import NAME as SOURCE
from alerts.sources.hkex_stock_connect_daily import SOUTHBOUND

RULE = "southbound_net_flow"
FEED = "southbound_flow"
# When a row became known: alerts.store.frames.KNOWN_COLUMN (rules may not import the store; a test pins it).
KNOWN_COLUMN = "published_at"


@dataclass(frozen=True)
class SouthboundNetFlowParams:
    """southbound_net_flow thresholds."""

    window: int
    max_lookback_sessions: int
    min_history: int
    min_net_hkd: float
    std_floor_hkd: float
    min_abs_z: float
    min_percentile: float
    warning_abs_z: float
    streak_sessions: int


@dataclass(frozen=True)
class _Day:
    """One stock's figures on one file date, both southbound channels summed."""

    code: str
    name: str
    buy: float
    sell: float
    net: float
    channels: int


@quiet
def evaluate_southbound_net_flow(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Unusually large same-day southbound net buying or selling of a top-10 stock, or a one-sided run."""
    p = params.get(RULE, SouthboundNetFlowParams)
    daily = _daily(_known(ctx))
    if daily.empty or as64(ctx.day) not in set(daily["date"].to_numpy(dtype="datetime64[ns]")):
        return [], []
    file_dates = np.unique(daily["date"].to_numpy(dtype="datetime64[ns]"))
    oldest = as64(sessions_back(ctx.day, max(p.max_lookback_sessions, 1))[0])
    today = daily[daily["date"] == pd.Timestamp(ctx.day)]
    alerts: list[Alert] = []
    notes: list[Note] = []
    for row in today.itertuples(index=False):
        if ctx.codes is not None and row.code not in ctx.codes:
            continue
        stock = daily[daily["code"] == row.code]
        nets = stock.set_index("date")["net"]
        past = nets[(nets.index < pd.Timestamp(ctx.day)) & (nets.index >= pd.Timestamp(oldest))]
        history = past.to_numpy(dtype="float64")[-max(p.window, 1) :]
        day = _Day(row.code, row.name, row.buy, row.sell, row.net, row.channels)
        streak = _streak(nets, file_dates, ctx)
        large = _large(day, history, p)
        if large is None and abs(day.net) >= p.min_net_hkd and len(history) < p.min_history:
            notes.append(
                Note(RULE, day.code, f"net {money(day.net)}: only {len(history)} earlier top-10 days")
            )
        if large is not None:
            alerts.append(_alert(ctx, p, day, history, streak, large))
        if p.streak_sessions > 0 and abs(streak) == p.streak_sessions:
            alerts.append(_alert(ctx, p, day, history, streak, None))
    return alerts, notes


def _known(ctx: RuleContext) -> pd.DataFrame:
    """The feed's southbound rows dated up to `ctx.day` and known by `ctx.moment`."""
    frame = ctx.feed(FEED)
    keep = (days64(frame["date"]) <= as64(ctx.day)) & frame["channel"].isin(SOUTHBOUND).fillna(
        False
    ).to_numpy(dtype=bool)
    if ctx.moment is not None and KNOWN_COLUMN in frame.columns:
        known = pd.to_datetime(frame[KNOWN_COLUMN], utc=True)
        keep &= (known <= pd.Timestamp(ctx.moment)).fillna(False).to_numpy(dtype=bool)
    return frame.loc[keep]


def _daily(frame: pd.DataFrame) -> pd.DataFrame:
    """One row a stock and file date: buy, sell and net summed over the channels (finite figures only)."""
    columns = ["date", "code", "name", "buy", "sell", "net", "channels"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    buy, sell = floats(frame["buy_hkd"]), floats(frame["sell_hkd"])
    codes = strings(frame["code"])
    good = np.isfinite(buy) & np.isfinite(sell) & np.array([isinstance(c, str) and c != "" for c in codes])
    good &= ~np.isnat(days64(frame["date"]))
    rows = pd.DataFrame(
        {
            "date": frame["date"].to_numpy(dtype="datetime64[ns]")[good],
            "code": codes[good],
            "name": [str(n) if isinstance(n, str) else "" for n in strings(frame["name"])[good]],
            "buy": buy[good],
            "sell": sell[good],
        }
    )
    if rows.empty:
        return pd.DataFrame(columns=columns)
    grouped = rows.groupby(["date", "code"], sort=True).agg(
        name=("name", "last"), buy=("buy", "sum"), sell=("sell", "sum"), channels=("buy", "size")
    )
    grouped["net"] = grouped["buy"] - grouped["sell"]
    return grouped.reset_index()[columns]


def _streak(nets: pd.Series, file_dates: np.ndarray, ctx: RuleContext) -> int:
    """Signed length of the run of same-sign nets ending today over consecutive file dates (0: no net today)."""
    dates = file_dates[file_dates <= as64(ctx.day)][::-1]  # newest first
    by_date = {np.datetime64(d, "ns"): float(v) for d, v in nets.items()}
    first = by_date.get(dates[0], 0.0) if dates.size else 0.0
    sign = int(np.sign(first))
    if sign == 0:
        return 0
    length = 0
    for when in dates:
        value = by_date.get(when)
        if value is None or int(np.sign(value)) != sign:
            break
        length += 1
    return sign * length


def _large(day: _Day, history: np.ndarray, p: SouthboundNetFlowParams) -> tuple[float, float] | None:
    """(z, percentile) when today's net is unusually large for the stock, else None."""
    if abs(day.net) < p.min_net_hkd or len(history) < max(p.min_history, 1):
        return None
    std = max(float(history.std()), p.std_floor_hkd)
    z = (day.net - float(history.mean())) / std
    percentile = 100.0 * float((history < day.net).sum()) / len(history)
    if not (np.isfinite(z) and np.isfinite(percentile)):
        return None
    if day.net > 0 and z >= p.min_abs_z and percentile >= p.min_percentile:
        return z, percentile
    if day.net < 0 and z <= -p.min_abs_z and percentile <= 100.0 - p.min_percentile:
        return z, percentile
    return None


def _alert(
    ctx: RuleContext,
    p: SouthboundNetFlowParams,
    day: _Day,
    history: np.ndarray,
    streak: int,
    large: tuple[float, float] | None,
) -> Alert:
    """One alert: a large net (`large` given) or a run of `streak` one-sided sessions."""
    buying = day.net > 0
    side = "buy" if buying else "sell"
    verb = "net buying" if buying else "net selling"
    figures = f"southbound {verb} {money(abs(day.net))} on {ctx.day} (bought {money(day.buy)}, sold {money(day.sell)})"
    if large is not None:
        z, percentile = large
        why = (
            f"{figures}: {z:+.1f}σ, the {ordinal(int(percentile))} percentile of its {len(history)} earlier "
            f"days in the southbound top 10"
        )
        identity, severity = f"large:{side}", "warning" if abs(z) >= p.warning_abs_z else "notice"
    else:
        why = f"{figures}: {verb} on {abs(streak)} southbound sessions in a row while in the top 10"
        identity, severity = f"streak:{side}", "notice"
    return Alert(
        rule=RULE,
        code=day.code,
        name=day.name,
        trade_date=ctx.day,
        severity=severity,
        why=why,
        facts=(
            Fact("net_hkd", rounded(day.net, 0), "HKD"),
            Fact("buy_hkd", rounded(day.buy, 0), "HKD"),
            Fact("sell_hkd", rounded(day.sell, 0), "HKD"),
            # A run has no z of its own: the streak alert leaves z and percentile out rather than print "n/a".
            *(
                (Fact("z", rounded(z), "σ"), Fact("percentile", rounded(percentile, 1), "%"))
                if large is not None
                else ()
            ),
            Fact("history", len(history), "days"),
            Fact("streak", abs(streak), "sessions"),
            Fact("flow_date", ctx.day.isoformat(), "date"),
        ),
        links=ctx.link(SOURCE, ctx.day),
        published_at=published(SOURCE, ctx.day),
        identity=identity,
    )


def _direction(alert: Alert) -> int | None:
    """Net buying reads as support for the price, net selling as pressure."""
    side = alert.identity.rpartition(":")[2]
    return 1 if side == "buy" else -1 if side == "sell" else None


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🌊", ("net_hkd", "z", "streak"), _direction, chart="southbound"),),
    markets=("HK",),
    params={RULE: SouthboundNetFlowParams},
    signal=evaluate_southbound_net_flow,
    feeds=(FEED,),
    triggers=(SOURCE,),
)
