"""The committed docs show what the bot answers today: the card page and the chart pictures are not stale."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_card_page_matches_what_the_bot_answers() -> None:
    build = runpy.run_path(str(ROOT / "scripts" / "build_docs.py"))["build"]
    committed = (ROOT / "docs" / "card-01810.md").read_text(encoding="utf-8")
    assert committed == build(), "docs/card-01810.md is stale: run python scripts/build_docs.py"
    assert "持倉概覽" in committed and "positioning card" in committed


def test_chart_pictures_are_pngs_and_the_readme_shows_them() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("chart-01810.png", "chart-01810-zh.png"):
        data = (ROOT / "docs" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 10_000_000
    assert "docs/chart-01810.png" in readme and "docs/card-01810.md" in readme
