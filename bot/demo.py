"""`positioning-bot demo`: replay a bundled data set and chat with the bot in the console.

No token, no network, no Redis: the bundled files (alerts/demo_data, laid out like the source URLs) are parsed
into memory — an in-process store — and replayed through the same rules and rendering the bot uses.
"""

from __future__ import annotations

import shlex
import sys
from datetime import date
from importlib import resources
from pathlib import Path

from alerts.history import History, load_directory, span
from alerts.replay import ReplayResult, replay
from alerts.rules import load_params
from bot.answers import answer
from bot.html import to_console
from bot.i18n import full_date, t
from bot.render import buttons_for, console_buttons, render_group
from bot.view import DataView

DEMO_START = date(2025, 11, 17)
DEMO_END = date(2025, 11, 28)


def demo_root() -> Path:
    """Folder of the bundled demo files."""
    return Path(str(resources.files("alerts").joinpath("demo_data")))


def load_demo() -> tuple[History, ReplayResult]:
    """Parse the bundled files and replay the files published in the demo period, in publication order."""
    first, last = span(DEMO_START, DEMO_END)
    history = load_directory(demo_root(), first, last)
    return history, replay(history, DEMO_START, DEMO_END, load_params())


def print_replay(result: ReplayResult, color: bool, lang: str = "en") -> None:
    """Print the alerts grouped by the day they would have been pushed (their file's publication, not their trade
    date), one Telegram message per day as a watcher of every stock would get it, in `lang`."""
    by_day: dict[date, list] = {}
    for day, alert in result.alerts:
        by_day.setdefault(day, []).append(alert)
    print(t(lang, "demo.intro", start=full_date(lang, DEMO_START), end=full_date(lang, DEMO_END)) + "\n")
    for day in result.days:
        alerts = by_day.get(day, [])
        print(t(lang, "demo.day", day=full_date(lang, day), n=len(alerts)))
        for message in render_group(alerts, day, lang) if alerts else []:
            print(to_console(message, color=color))
        buttons = [b for a in alerts for b in buttons_for(a, lang)][:3]
        if buttons and len(alerts) == 1:
            print(console_buttons(buttons))
        print()
    for problem in result.problems:
        print(f"problem: {problem}")


def console_chat(view: DataView, color: bool, lang: str = "en") -> None:
    """Read commands from the terminal and answer them like the bot would, in `lang`."""
    print(t(lang, "demo.chat_hint"))
    while True:
        try:
            line = input("you › ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if not line:
            continue
        if line in ("/quit", "/exit", "quit", "exit"):
            return
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        command = words[0] if words[0].startswith("/") else "/card"
        args = words[1:] if words[0].startswith("/") else words
        reply = answer(view, command, args, lang)
        print("bot › " + to_console(reply.text, color=color).replace("\n", "\n      "))
        if reply.buttons:
            print("      " + console_buttons(reply.buttons))


def run_demo(chat: bool = True, lang: str = "en") -> int:
    """Replay the demo in `lang` (en or zh), then chat when standard input is a terminal."""
    color = sys.stdout.isatty()
    history, result = load_demo()
    print_replay(result, color, lang)
    if chat and sys.stdin is not None and sys.stdin.isatty():
        view = DataView(history, DEMO_END, [a for _, a in result.alerts], result.outcomes)
        console_chat(view, color, lang)
    return 0
