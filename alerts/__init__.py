"""Data side of positioning-bot: sources, parsing, storage, rules and routing. Never imports telegram."""
