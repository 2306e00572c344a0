"""Saving a profile that came from a file keeps the file's comments and key order (wizard.yaml_merge)."""

from __future__ import annotations

import json

import yaml

from wizard.profile import validate_profile
from wizard.yaml_merge import merge_into

ORIGINAL = """\
# Production cluster: ask ops before changing the nodes.
cluster_name: studio-prod   # wsrep_cluster_name
preferred_primary: studio1
nodes:
  - name: studio1    # rack A
    role: studio
    address: 10.20.0.11
  - name: studio2    # rack B
    role: studio
    address: 10.20.0.12
  - {name: arbiter, role: arbiter, address: 10.20.0.13}
dns:
  # the record the authors use
  authoring_name: authoring.example.com
  servers: [10.20.0.53]
  ttl: 5             # seconds, the default, written out on purpose
redis:
  url: "redis://10.20.0.20:6379/0"
  password: "env:REDIS_PASSWORD"
database: {sst_password: "env:SST_PASSWORD"}
"""


def save(text: str, change: dict[str, object]) -> str:
    data = yaml.safe_load(text)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        cursor = data
        for part in parents:
            cursor = cursor[int(part)] if part.isdigit() else cursor.setdefault(part, {})
        cursor[last] = value
    profile = validate_profile(data, check_files=False)
    out = merge_into(text, json.loads(profile.model_dump_json()),
                     json.loads(profile.model_dump_json(exclude_defaults=True)))
    assert validate_profile(yaml.safe_load(out), check_files=False) == profile
    return out


def test_an_unchanged_profile_is_written_back_byte_for_byte() -> None:
    assert save(ORIGINAL, {}) == ORIGINAL


def test_a_changed_value_keeps_every_comment_and_the_key_order() -> None:
    out = save(ORIGINAL, {"nodes.1.address": "10.20.0.22", "dns.ttl": 10})
    assert out == ORIGINAL.replace("address: 10.20.0.12", "address: 10.20.0.22").replace(
        "ttl: 5             #", "ttl: 10            #")


def test_a_new_setting_is_added_only_when_it_is_not_the_default() -> None:
    out = save(ORIGINAL, {"backups.schedule": "02:30", "backups.keep_last": 7})  # 7 is the default
    assert out.startswith(ORIGINAL)
    added = out[len(ORIGINAL):]
    assert "schedule: 02:30" in added or "schedule: '02:30'" in added
    assert "keep_last" not in added


def test_a_setting_the_profile_dropped_is_removed() -> None:
    out = save(ORIGINAL, {"redis.url": None, "redis.sentinels": ["10.20.0.11:26379", "10.20.0.12:26379"],
                          "redis.master_name": "studio"})
    assert "redis://" not in out
    assert "# the record the authors use" in out and "# rack B" in out
    assert yaml.safe_load(out)["redis"]["sentinels"] == ["10.20.0.11:26379", "10.20.0.12:26379"]
