"""Settings: defaults, .env, validation naming the bad variable, and token redaction in logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings, setup_logging

TOKEN = "123456789:AAExampleExampleExampleExample_abc"


def test_defaults_match_the_documented_urls() -> None:
    s = load_settings({}, env_file=None)
    assert s.telegram_api_url == "https://api.telegram.org/bot"
    assert s.redis_url == ""  # no REDIS_URL: the CLI starts (or reuses) the embedded Redis under DATA_DIR
    assert s.data_dir == Path.home().resolve() / ".local" / "share" / "positioning-bot"
    assert (s.hkex_url, s.hkexnews_url, s.sfc_url) == (
        "https://www.hkex.com.hk",
        "https://www.hkexnews.hk",
        "https://www.sfc.hk",
    )
    assert (s.hkex_di_url, s.finra_url, s.sec_url) == (
        "https://di.hkex.com.hk",
        "https://cdn.finra.org",
        "https://www.sec.gov",
    )
    assert s.hkexnews_sdw_url == "https://www3.hkexnews.hk"
    assert s.admin_chat_ids == ()
    assert s.log_level == "INFO"


def test_data_dir_from_the_environment_or_xdg(tmp_path: Path) -> None:
    assert (
        load_settings({"XDG_DATA_HOME": str(tmp_path)}, env_file=None).data_dir
        == tmp_path / "positioning-bot"
    )
    assert load_settings({"DATA_DIR": str(tmp_path / "d")}, env_file=None).data_dir == tmp_path / "d"
    assert load_settings({"REDIS_URL": " "}, env_file=None).redis_url == ""  # blank counts as unset
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="^DATA_DIR: must be a directory"):
        load_settings({"DATA_DIR": str(tmp_path / "file")}, env_file=None)


def test_environment_overrides_and_trailing_slash_is_dropped() -> None:
    s = load_settings(
        {
            "HKEX_URL": "http://127.0.0.1:8080/",
            "ADMIN_CHAT_IDS": "1, -100200 ,",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "LOG_LEVEL": "debug",
        },
        env_file=None,
    )
    assert s.hkex_url == "http://127.0.0.1:8080"
    assert s.admin_chat_ids == (1, -100200)
    assert s.telegram_bot_token == TOKEN
    assert s.log_level == "DEBUG"


def test_local_hkexnews_serves_the_stock_connect_pages_too() -> None:
    s = load_settings({"HKEXNEWS_URL": "http://127.0.0.1:9"}, env_file=None)
    assert s.hkexnews_sdw_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HKEX_URL", "ftp://x"),
        ("SFC_URL", "not a url"),
        ("REDIS_URL", "http://localhost:6379"),
        ("ADMIN_CHAT_IDS", "12,abc"),
        ("LOG_LEVEL", "LOUD"),
        ("TELEGRAM_BOT_TOKEN", "oops"),
        ("SEC_USER_AGENT", "no contact"),
        ("TELEGRAM_API_URL", "https://api.telegram.org/bot?x=1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, env_file=None)
    assert info.value.variable == name
    assert str(info.value).startswith(f"{name}:")


def test_bad_token_is_not_echoed() -> None:
    bad = "123:" + "s3cret" * 2
    with pytest.raises(ConfigError) as info:
        load_settings({"TELEGRAM_BOT_TOKEN": bad}, env_file=None)
    assert "s3cret" not in str(info.value)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HKEX_URL=http://127.0.0.1:1111\nSFC_URL=http://127.0.0.1:2222\n")
    s = load_settings({"SFC_URL": "http://127.0.0.1:3333"}, env_file=env_file)
    assert s.hkex_url == "http://127.0.0.1:1111"
    assert s.sfc_url == "http://127.0.0.1:3333"


def test_token_is_not_in_repr_and_required_for_the_bot() -> None:
    s = load_settings({"TELEGRAM_BOT_TOKEN": TOKEN}, env_file=None)
    assert TOKEN not in repr(s)
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        load_settings({}, env_file=None).require_token()


def test_logging_redacts_tokens_and_quiets_httpx(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers.clear()
    try:
        setup_logging("DEBUG")
        logging.getLogger("bot.test").warning("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        assert logging.getLogger("httpx").level == logging.WARNING
        for handler in root.handlers:
            handler.flush()
        err = capsys.readouterr().err
        assert "<token>" in err
        assert TOKEN not in err
    finally:
        root.handlers[:] = saved


def test_delivery_rate_and_paid_broadcast() -> None:
    assert load_settings({}, env_file=None).delivery_rate == 30.0
    with pytest.raises(ConfigError, match="ALLOW_PAID_BROADCAST=true"):
        load_settings({"DELIVERY_RATE": "100"}, env_file=None)
    paid = load_settings({"DELIVERY_RATE": "800", "ALLOW_PAID_BROADCAST": "yes"}, env_file=None)
    assert (paid.delivery_rate, paid.allow_paid_broadcast) == (800.0, True)
    with pytest.raises(ConfigError, match="DELIVERY_RATE"):
        load_settings({"DELIVERY_RATE": "2000", "ALLOW_PAID_BROADCAST": "true"}, env_file=None)
    with pytest.raises(ConfigError, match="ALLOW_PAID_BROADCAST"):
        load_settings({"ALLOW_PAID_BROADCAST": "maybe"}, env_file=None)


def test_clocks_from_clock_start_share_one_timeline() -> None:
    import time

    settings = load_settings({"CLOCK_START": "2031-01-02T18:05:00+08:00"}, env_file=None)
    first = settings.clock()
    time.sleep(0.05)
    second = settings.clock()  # made later: must not restart at CLOCK_START
    a, b = first(), second()
    assert abs((b - a).total_seconds()) < 0.02
    assert b.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert (a - settings.clock_start).total_seconds() >= 0.05  # type: ignore[operator]


def test_skipped_ticks_of_a_running_job_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from config.settings import setup_logging

    setup_logging("INFO")
    logger = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        logger.warning(
            'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
            "drain-outbox",
            1,
        )
        logger.warning("Run time of job %s was missed by %s", "poll-sources", "0:00:31")
    assert [r.getMessage() for r in caplog.records] == ["Run time of job poll-sources was missed by 0:00:31"]


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"REDIS_CLUSTER": "1"}, "needs REDIS_URL"),
        ({"REDIS_URL": "unix:///tmp/r.sock", "REDIS_CLUSTER": "yes"}, "over TCP"),
        ({"REDIS_URL": "redis://h:1", "REDIS_CLUSTER": "maybe"}, "true or false"),
        ({"REDIS_URL": "cluster://h:1"}, r"redis\+cluster://"),
    ],
)
def test_redis_cluster_misconfigurations_name_the_variable(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(env, env_file=None)
