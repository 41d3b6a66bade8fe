"""Configuration for positioning-bot: settings from the environment and defaults shipped as TOML."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
