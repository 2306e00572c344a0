"""dns.api_url / dns.api_key: validated with messages naming the field; the record change reads as a diff."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_profile import base
from wizard.dnsapi import RecordChange, wanted
from wizard.profile import ProfileError, validate_profile
from wizard.secrets import Secrets


def with_dns(**dns: Any) -> dict[str, Any]:
    d = base()
    d["dns"].update(dns)
    return d


def test_without_an_api_the_record_stays_a_file() -> None:
    p = validate_profile(base())
    assert p.dns.api_url is None and p.dns.api_key == "none"
    assert Secrets.resolve_for(p, given={"sst_password": "x", "redis_password": "y"}).dns_api_key is None


def test_api_url_and_key_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDNS_KEY", "the-api-key-value")
    p = validate_profile(with_dns(api_url="http://10.0.0.53:8081/", api_key="env:PDNS_KEY"))
    assert p.dns.api_url == "http://10.0.0.53:8081"
    s = Secrets.resolve_for(p, given={"sst_password": "x", "redis_password": "y"})
    assert s.dns_api_key == "the-api-key-value"
    assert Secrets.resolve_for(p, only={"redis_password"}, given={"redis_password": "y"}).dns_api_key is None


@pytest.mark.parametrize(("dns", "expected"), [
    ({"api_url": "http://10.0.0.53:8081"}, "dns: api_url is set but api_key is none"),
    ({"api_key": "env:K"}, "dns: api_key is set but api_url is not"),
    ({"api_url": "ftp://10.0.0.53", "api_key": "env:K"}, "dns.api_url: 'ftp://10.0.0.53' is not a PowerDNS API URL"),
    ({"api_url": "http://10.0.0.53:8081/api/v1", "api_key": "env:K"}, "is not a PowerDNS API URL"),
    ({"api_url": "http://u:pw@10.0.0.53:8081", "api_key": "env:K"}, "dns.api_url: the API URL holds credentials"),
    ({"api_url": "http://10.0.0.53:8081", "api_key": "plain-key"}, "dns.api_key: a secret must be a reference"),
])
def test_bad_api_settings_name_the_field(dns: dict[str, str], expected: str) -> None:
    with pytest.raises(ProfileError) as err:
        validate_profile(with_dns(**dns))
    assert expected in str(err.value)
    assert "plain-key" not in str(err.value)


def test_wanted_record_is_the_rendered_lua_in_api_form() -> None:
    p = validate_profile(with_dns(ttl=5))
    name, content, ttl = wanted(p)
    assert name == "authoring.example.com." and ttl == 5
    assert content.startswith('A "ifurlup(') and "{{'10.0.0.11'}, {'10.0.0.12'}}" in content


def test_change_diff_lists_removed_and_added_records() -> None:
    c = RecordChange("s.example.com.", "example.com.", "update", ['A "new()"'], 5, ['A "old()"'], 60, ["A 10.0.0.99"])
    assert c.diff.splitlines() == ['- s.example.com. 60 IN LUA A "old()"', "- s.example.com. IN A 10.0.0.99",
                                   '+ s.example.com. 5 IN LUA A "new()"']
    same = RecordChange("s.example.com.", "example.com.", "unchanged", ['A "x()"'], 5, ['A "x()"'], 5)
    assert same.diff == ""
