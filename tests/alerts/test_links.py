"""Where a source's files live: the public hosts alerts link to, and the configured hosts fetched from."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from alerts.links import links_for, urls_for
from alerts.rules.context import RuleContext, default_links
from alerts.sources import SOURCES, get_source, public_links
from config.settings import Settings, load_settings

DAY = date(2025, 11, 27)


@pytest.mark.parametrize("name", list(SOURCES))
def test_public_host_is_the_settings_default(name: str) -> None:
    # One truth in two layers that may not import each other (sources know no config): pinned here.
    source = SOURCES[name]
    assert Settings().base_url(source.base_setting) == source.public_url
    assert load_settings({}, env_file=None).base_url(source.base_setting) == source.public_url


def test_public_links_are_the_default_links() -> None:
    assert public_links("hkex-quotes", DAY) == (
        "https://www.hkex.com.hk/eng/stat/smstat/dayquot/d251127e.htm",
    )
    assert default_links is public_links
    assert RuleContext.link is public_links  # the dataclass field's default


def test_links_for_uses_the_configured_hosts() -> None:
    settings = replace(Settings(), hkex_url="http://127.0.0.1:9")
    link = links_for(settings)
    assert link("hkex-quotes", DAY) == ("http://127.0.0.1:9/eng/stat/smstat/dayquot/d251127e.htm",)
    assert link("finra-short-volume", DAY) == public_links("finra-short-volume", DAY)
    assert urls_for(get_source("hkex-quotes"), settings, DAY) == list(link("hkex-quotes", DAY))


def test_unknown_source_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown source"):
        links_for(Settings())("no-such-source", DAY)
