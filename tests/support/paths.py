"""Where the repository and its fixtures are, and a free loopback port."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
DEMO_DATA = ROOT / "alerts" / "demo_data"


def fixture_bytes(source: str, name: str) -> bytes:
    """Bytes of tests/fixtures/<source>/<name>."""
    return (FIXTURES / source / name).read_bytes()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
