"""Run the `positioning-bot` console script as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (falls back to `python -m bot`); *_URL variables are not inherited."""
    exe = shutil.which("positioning-bot", path=str(Path(sys.executable).parent))
    command = [exe, *args] if exe else [sys.executable, "-m", "bot", *args]
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    full_env.update(env or {})
    return subprocess.run(
        command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120, check=False
    )
