"""Settings read from environment variables (and an optional `.env`), validated once at start."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULTS: dict[str, str] = {
    "TELEGRAM_API_URL": "https://api.telegram.org/bot",
    "REDIS_URL": "",  # unset: the CLI starts (or reuses) the embedded Redis under DATA_DIR
    "REDIS_CLUSTER": "false",  # true: REDIS_URL names a node of a Redis Cluster (as redis+cluster:// does)
    "DATA_DIR": "",  # unset: default_data_dir()
    "ADMIN_CHAT_IDS": "",
    "HKEX_URL": "https://www.hkex.com.hk",
    "HKEXNEWS_URL": "https://www.hkexnews.hk",
    "SFC_URL": "https://www.sfc.hk",
    "HKEX_DI_URL": "https://di.hkex.com.hk",
    "FINRA_URL": "https://cdn.finra.org",
    "SEC_URL": "https://www.sec.gov",
    "HSI_URL": "https://www.hsi.com.hk",
    "SEC_USER_AGENT": "",
    "LOG_LEVEL": "INFO",
    "DELIVERY_RATE": "30",
    "ALLOW_PAID_BROADCAST": "false",
    "DELIVERY_PROCESSES": "0",  # 0: `run` drains the outbox itself; N: N `positioning-bot delivery` processes do
    "CLOCK_START": "",
    "LEASE_TTL_SECONDS": "30",
    "WEBHOOK_URL": "",
    "PORT": "",
    "HEALTH_PORT": "",
    "UPDATE_PARTITIONS": "16",
    "UPDATE_LEASE_SECONDS": "5",
}
# The CCASS / Stock Connect pages live on www3.hkexnews.hk while report files live on www.hkexnews.hk.
# When HKEXNEWS_URL points elsewhere (a mirror, a local origin), both paths are served from there.
DEFAULT_HKEXNEWS_SDW_URL = "https://www3.hkexnews.hk"
# The HKEXnews title search (announcements by headline category) and the announcement PDFs live on www1; like the
# www3 pages, they follow HKEXNEWS_URL when that points elsewhere.
DEFAULT_HKEXNEWS_WWW1_URL = "https://www1.hkexnews.hk"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded Redis keeps its data: $XDG_DATA_HOME/positioning-bot, else ~/.local/share/positioning-bot."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".local" / "share") / "positioning-bot"


_CLOCK_OFFSETS: dict[datetime, timedelta] = {}  # CLOCK_START -> shift, fixed at the first clock made
_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ConfigError(ValueError):
    """A configuration variable is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Validated runtime settings; secrets are kept out of repr."""

    telegram_bot_token: str = field(default="", repr=False)
    telegram_api_url: str = DEFAULTS["TELEGRAM_API_URL"]
    # Empty: no REDIS_URL was given, and the CLI fills in the embedded server's URL (see alerts/store/embedded.py).
    redis_url: str = field(default=DEFAULTS["REDIS_URL"], repr=False)
    # REDIS_URL names a Redis Cluster (REDIS_CLUSTER=1 or a redis+cluster:// URL): alerts/store/connect.py then
    # builds redis-py's cluster client, which follows the cluster's slot map from that one node.
    redis_cluster: bool = False
    data_dir: Path = field(
        default_factory=default_data_dir
    )  # the embedded Redis's folder (unused with REDIS_URL)
    admin_chat_ids: tuple[int, ...] = ()
    hkex_url: str = DEFAULTS["HKEX_URL"]
    hkexnews_url: str = DEFAULTS["HKEXNEWS_URL"]
    hkexnews_sdw_url: str = DEFAULT_HKEXNEWS_SDW_URL
    hkexnews_www1_url: str = DEFAULT_HKEXNEWS_WWW1_URL
    sfc_url: str = DEFAULTS["SFC_URL"]
    hkex_di_url: str = DEFAULTS["HKEX_DI_URL"]
    finra_url: str = DEFAULTS["FINRA_URL"]
    sec_url: str = DEFAULTS["SEC_URL"]
    hsi_url: str = DEFAULTS["HSI_URL"]
    sec_user_agent: str = ""
    log_level: str = "INFO"
    delivery_rate: float = 30.0  # messages per second across all chats (no 1 s window holds more)
    allow_paid_broadcast: bool = False  # Telegram's paid broadcasts allow up to 1000 messages per second
    # `positioning-bot delivery` processes draining the outbox (sharing the limits in Redis); 0: `run` drains it.
    delivery_processes: int = 0
    # Run as if the process started at this instant (replays, rehearsals, tests); time then advances normally.
    clock_start: datetime | None = None
    lease_ttl_seconds: float = 30.0  # how long a dead leader keeps the lease before the standby takes over
    # Webhook mode when set: Telegram posts updates to this URL, sending webhook_secret back with each of them.
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    # The host's PORT: the webhook listens there (8443 when unset); without a webhook, /healthz does.
    port: int | None = None
    health_port: int | None = None  # HEALTH_PORT: /healthz and /metrics, overriding PORT for them
    # Webhook mode with `web` + `worker` processes: updates are spread over this many Redis streams by chat.
    update_partitions: int = 16
    # A worker's hold on its partitions: a dead worker's updates are taken over after about this long.
    update_lease_seconds: float = 5.0

    def __post_init__(self) -> None:
        _remember_token(self.telegram_bot_token)  # redact() now also finds this token's secret on its own

    def base_url(self, setting: str) -> str:
        """Return the base URL held by the attribute `setting` (e.g. ``"hkex_url"``)."""
        value = getattr(self, setting)
        if not isinstance(value, str):
            raise AttributeError(setting)
        return value

    def clock(self) -> Callable[[], datetime]:
        """The process clock: real time, or real time shifted so that it started at CLOCK_START."""
        start = self.clock_start
        if start is None:
            return lambda: datetime.now(UTC)
        # One shifted timeline per process: every clock made from these settings agrees, so a deadline set by one
        # part (a cycle's routing) is never in the future for another (the delivery worker).
        offset = _CLOCK_OFFSETS.setdefault(start, start - datetime.now(UTC))
        return lambda: (datetime.now(UTC) + offset).astimezone(start.tzinfo)

    def require_token(self) -> str:
        """Return the bot token or raise ConfigError when it is missing."""
        if not self.telegram_bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN", "is required to run the bot (get one from @BotFather)")
        return self.telegram_bot_token


def _base_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(name, f"must be an http(s) URL like https://host[:port], got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError(name, "must not contain a query string or fragment")
    return value.rstrip("/")


REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")  # a node of a Redis Cluster (plain or TLS)


def _redis_url(value: str) -> str:
    value = value.strip()
    if not value:
        return ""  # the embedded server
    if urlsplit(value).scheme not in REDIS_SCHEMES + CLUSTER_SCHEMES:
        raise ConfigError(
            "REDIS_URL",
            "must start with redis://, rediss://, unix:// (one server) or redis+cluster://, rediss+cluster:// "
            f"(a Redis Cluster), got scheme of {value!r}",
        )
    return value


def _redis_cluster(url: str, flag: str) -> bool:
    """True when REDIS_URL names a cluster: a redis+cluster:// URL, or REDIS_CLUSTER set with a redis(s):// URL."""
    cluster = _flag("REDIS_CLUSTER", flag)
    scheme = urlsplit(url).scheme
    if cluster and not url:
        raise ConfigError(
            "REDIS_CLUSTER", "needs REDIS_URL naming a node of the cluster (the embedded Redis is one server)"
        )
    if cluster and scheme == "unix":
        raise ConfigError(
            "REDIS_CLUSTER", "a Redis Cluster is reached over TCP: REDIS_URL must be redis:// or rediss://"
        )
    return cluster or scheme in CLUSTER_SCHEMES


def _data_dir(value: str, environ: Mapping[str, str]) -> Path:
    folder = Path(value.strip()).expanduser() if value.strip() else default_data_dir(environ)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("DATA_DIR", f"must be a directory, got the file {str(folder)!r}")
    return folder.resolve()


def _chat_ids(value: str) -> tuple[int, ...]:
    ids: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise ConfigError(
                "ADMIN_CHAT_IDS", f"must be a comma list of integer chat ids, got {part!r}"
            ) from None
    return tuple(ids)


def _token(value: str) -> str:
    if value and not _TOKEN_RE.match(value):
        # Never echo the value: it may be a real token with a typo.
        raise ConfigError("TELEGRAM_BOT_TOKEN", "does not look like a bot token (expected <digits>:<secret>)")
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in _LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(_LOG_LEVELS)}, got {value!r}")
    return level


def _user_agent(value: str) -> str:
    if value and "@" not in value:
        raise ConfigError(
            "SEC_USER_AGENT", "must name the operator and a contact e-mail, e.g. 'Acme Bot ops@acme.hk'"
        )
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"must be true or false, got {value!r}")


def _delivery_rate(value: str, paid: bool) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(
            "DELIVERY_RATE", f"must be a number of messages per second, got {value!r}"
        ) from None
    ceiling = 1000.0 if paid else 30.0
    if not 0 < rate <= ceiling:
        hint = "" if paid else " (set ALLOW_PAID_BROADCAST=true for up to 1000/s, paid in Telegram Stars)"
        raise ConfigError("DELIVERY_RATE", f"must be in (0, {ceiling:g}]{hint}, got {value!r}")
    return rate


def _clock_start(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError("CLOCK_START", f"must be an ISO date-time with offset, got {value!r}") from None
    if moment.tzinfo is None:
        raise ConfigError("CLOCK_START", "must carry a UTC offset, e.g. 2025-11-27T18:00:00+08:00")
    return moment


def _seconds(name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, got {value!r}")
    return number


def _count(name: str, value: str, high: int) -> int:
    try:
        number = int(value.strip() or "0")
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {value!r}") from None
    if not 0 <= number <= high:
        raise ConfigError(name, f"must be between 0 and {high}, got {value!r}")
    return number


def _port(name: str, value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(name, f"must be a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(name, f"must be between 0 and 65535, got {value!r}")
    return number


def _partitions(value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError("UPDATE_PARTITIONS", f"must be a whole number, got {value!r}") from None
    if not 1 <= number <= 1024:
        raise ConfigError("UPDATE_PARTITIONS", f"must be between 1 and 1024, got {value!r}")
    return number


def read_environment(environ: Mapping[str, str], env_file: Path | None = None) -> dict[str, str]:
    """Merge defaults, an optional .env file and the environment (environment wins)."""
    merged = dict(DEFAULTS)
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update({k: v for k, v in environ.items() if k in DEFAULTS or k in _EXTRA_NAMES})
    return merged


_EXTRA_NAMES = ("TELEGRAM_BOT_TOKEN", "HKEXNEWS_SDW_URL", "HKEXNEWS_WWW1_URL", "WEBHOOK_SECRET")


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Build validated Settings from `environ` (default: os.environ) plus an optional `.env` file."""
    env = read_environment(os.environ if environ is None else environ, env_file)
    hkexnews = _base_url("HKEXNEWS_URL", env["HKEXNEWS_URL"])
    sdw_default = DEFAULT_HKEXNEWS_SDW_URL if hkexnews == DEFAULTS["HKEXNEWS_URL"] else hkexnews
    www1_default = DEFAULT_HKEXNEWS_WWW1_URL if hkexnews == DEFAULTS["HKEXNEWS_URL"] else hkexnews
    return Settings(
        telegram_bot_token=_token(env.get("TELEGRAM_BOT_TOKEN", "").strip()),
        telegram_api_url=_base_url("TELEGRAM_API_URL", env["TELEGRAM_API_URL"]),
        redis_url=_redis_url(env["REDIS_URL"]),
        redis_cluster=_redis_cluster(_redis_url(env["REDIS_URL"]), env["REDIS_CLUSTER"]),
        data_dir=_data_dir(env["DATA_DIR"], os.environ if environ is None else environ),
        admin_chat_ids=_chat_ids(env["ADMIN_CHAT_IDS"]),
        hkex_url=_base_url("HKEX_URL", env["HKEX_URL"]),
        hkexnews_url=hkexnews,
        hkexnews_sdw_url=_base_url("HKEXNEWS_SDW_URL", env.get("HKEXNEWS_SDW_URL") or sdw_default),
        hkexnews_www1_url=_base_url("HKEXNEWS_WWW1_URL", env.get("HKEXNEWS_WWW1_URL") or www1_default),
        sfc_url=_base_url("SFC_URL", env["SFC_URL"]),
        hkex_di_url=_base_url("HKEX_DI_URL", env["HKEX_DI_URL"]),
        finra_url=_base_url("FINRA_URL", env["FINRA_URL"]),
        sec_url=_base_url("SEC_URL", env["SEC_URL"]),
        hsi_url=_base_url("HSI_URL", env["HSI_URL"]),
        sec_user_agent=_user_agent(env["SEC_USER_AGENT"].strip()),
        log_level=_log_level(env["LOG_LEVEL"]),
        delivery_rate=_delivery_rate(
            env["DELIVERY_RATE"], _flag("ALLOW_PAID_BROADCAST", env["ALLOW_PAID_BROADCAST"])
        ),
        allow_paid_broadcast=_flag("ALLOW_PAID_BROADCAST", env["ALLOW_PAID_BROADCAST"]),
        delivery_processes=_count("DELIVERY_PROCESSES", env["DELIVERY_PROCESSES"], 1000),
        clock_start=_clock_start(env["CLOCK_START"]),
        lease_ttl_seconds=_seconds("LEASE_TTL_SECONDS", env["LEASE_TTL_SECONDS"], 1, 600),
        webhook_url=env["WEBHOOK_URL"].strip(),
        webhook_secret=env.get("WEBHOOK_SECRET", "").strip(),
        port=_port("PORT", env["PORT"]),
        health_port=_port("HEALTH_PORT", env["HEALTH_PORT"]),
        update_partitions=_partitions(env["UPDATE_PARTITIONS"]),
        update_lease_seconds=_seconds("UPDATE_LEASE_SECONDS", env["UPDATE_LEASE_SECONDS"], 0.5, 60),
    )


# Anything shaped like a bot token (BotFather's are \d{8,10}:<35 chars>; this is wider on purpose), with its colon
# as is, URL-encoded (%3A) or encoded twice (%253A).
_TOKEN_SHAPE = re.compile(r"\d{3,}(?::|%3[Aa]|%253[Aa])[A-Za-z0-9_-]{20,}")
_KNOWN_SECRETS: set[str] = set()  # the secret half of every token configured in this process


def _remember_token(token: str) -> None:
    if _TOKEN_RE.match(token):
        _KNOWN_SECRETS.add(token.split(":", 1)[1])


# What the CLI prints (run, poll --deliver, any command) when Telegram refuses the token: PTB's own message quotes it.
REJECTED_TOKEN = (
    "configuration error: TELEGRAM_BOT_TOKEN: Telegram rejected the token (401 Unauthorized); "
    "check it with @BotFather"
)


def redact(text: str) -> str:
    """Replace bot tokens in `text` with ``<token>``: the one redaction for every exit of the process.

    Logs, tracebacks printed by the CLI, exception texts stored in Redis and admin messages all pass through it.
    It finds any token-shaped string (raw or URL-encoded) and the configured token's secret wherever it stands.
    """
    text = _TOKEN_SHAPE.sub("<token>", text)
    for secret in _KNOWN_SECRETS:
        if secret in text:
            text = text.replace(secret, "<token>")
    return text


def _redact_record(record: logging.LogRecord) -> None:
    """Redact a log record in place: message, traceback and stack."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: the handler reports it when it formats the record
        message = None
    if message is not None:
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class _RedactingRecordFactory:
    """Wraps the log record factory so every record is redacted as it is made, whichever handler prints it."""

    def __init__(self, base: Callable[..., logging.LogRecord]) -> None:
        self.base = base

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        _redact_record(record)
        return record


class _RedactToken(logging.Filter):
    """Redact bot tokens from log records: message, traceback and stack.

    httpx logs request URLs (which contain the token), and exception texts can quote them too: PTB's InvalidToken
    names the token itself, so the traceback is formatted and redacted here, before any handler prints it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def setup_logging(level: str) -> None:
    """Configure root logging once; third-party HTTP loggers stay at WARNING so URLs with tokens never print."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not isinstance(logging.getLogRecordFactory(), _RedactingRecordFactory):  # records reaching any handler
        logging.setLogRecordFactory(_RedactingRecordFactory(logging.getLogRecordFactory()))
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactToken())
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_SkipBusyTick())


class _SkipBusyTick(logging.Filter):
    """Drop APScheduler's "skipped: maximum number of running instances" for our one-at-a-time jobs.

    The outbox drain runs for up to half a minute while a backlog lasts and is ticked every second with
    max_instances=1 on purpose: each skipped tick is expected, and logging it would print a warning per second.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a skipped tick of a job that is still running."""
        return "maximum number of running instances reached" not in record.getMessage()
