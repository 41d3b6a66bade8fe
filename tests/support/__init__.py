"""What the tests stand on: the Bot API stand-in, the local origin, bot helpers, paths and the CLI runner.

Benchmarks import these as a package (`python -m bench.<name>` from the repository root)."""
