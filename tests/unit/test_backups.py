"""Pure logic of Arbiter snapshot backups: donor choice, catalog states, prune policy, manifest parsing."""

from __future__ import annotations

import pytest

from wizard.agent.receiver import parse_binlog_gtid, parse_galera_info
from wizard.backups import BackupError
from wizard.backups.catalog import Entry, classify
from wizard.backups.prune import select
from wizard.backups.take import choose_donor, garbd_argv
from wizard.backups.verify import resolve_id
from wizard.profile import Profile, validate_profile
from wizard.render import render

DAY = 86400.0


def profile() -> Profile:
    node = {"ssh": {"user": "root"}}
    return validate_profile({
        "cluster_name": "c1",
        "nodes": [{"name": "s1", "role": "studio", "address": "10.0.0.1", **node},
                  {"name": "s2", "role": "studio", "address": "10.0.0.2", **node},
                  {"name": "arb", "role": "arbiter", "address": "10.0.0.3", **node}],
        "preferred_primary": "s1",
        "dns": {"authoring_name": "studio.example.test", "zone": "example.test", "servers": ["10.0.0.9"]},
        "redis": {"url": "redis://10.0.0.9:6379/0"},
    }, check_files=False)


def test_the_donor_is_the_node_the_authoring_name_does_not_point_at() -> None:
    p = profile()
    assert choose_donor(p, None, ["10.0.0.1"])[0] == "s2"
    assert choose_donor(p, None, ["10.0.0.2"])[0] == "s1"
    name, why = choose_donor(p, None, [])
    assert name == "s2" and "no answer" in why
    assert choose_donor(p, "s1", ["10.0.0.1"]) == ("s1", "chosen with --donor")
    with pytest.raises(BackupError) as err:
        choose_donor(p, "arb", [])
    assert "s1, s2" in err.value.hint


def test_the_backup_garbd_has_its_own_port_work_dir_and_request() -> None:
    argv = garbd_argv(profile(), "s2", "tok", "/b/x/garbd", "/b/x/garbd.log")
    # every member, the Arbiter's own garbd too (connected at once, not learnt from the data nodes 0.5 s later)
    assert argv[argv.index("--address") + 1] == "gcomm://10.0.0.1,10.0.0.2,10.0.0.3"
    # the join retransmission stays Galera's default here: garbd --sst gives up at its first view, and a joiner
    # retransmitting every 0.2 s can install a view of its own before it hears the others
    assert argv[argv.index("--options") + 1] == ("gmcast.listen_addr=tcp://10.0.0.3:4570;pc.weight=0;"
                                                 "evs.keepalive_period=PT0.1S")
    assert argv[argv.index("--sst") + 1] == "studio_backup:10.0.0.3:4450/tok/3"
    assert argv[argv.index("--donor") + 1] == "s2"
    assert argv[argv.index("--workdir") + 1] == "/b/x/garbd"


def test_studio_nodes_get_the_sst_script_and_the_arbiter_does_not() -> None:
    files = render(profile(), None)
    script = [f for f in files["s1"] if str(f.path) == "/usr/bin/wsrep_sst_studio_backup"]
    assert len(script) == 1 and script[0].mode == 0o755 and not script[0].restart
    assert "--galera-info --stream=xbstream" in script[0].content
    assert not [f for f in files["arb"] if "wsrep_sst" in str(f.path)]


def test_backup_settings_reject_a_shared_port_and_a_relative_root() -> None:
    from wizard.profile import ProfileError

    base = profile().model_dump(mode="json")
    for bad, field in (({"receiver_port": 4570}, "garbd_port"), ({"root": "backups"}, "absolute")):
        with pytest.raises(ProfileError) as err:
            validate_profile({**base, "backups": bad}, check_files=False)
        assert field in str(err.value)


def test_galera_and_binlog_info_parsing() -> None:
    assert parse_galera_info("be3c67cc-ecd6-11f1-94c3-327ff925575b:1640 0\n") == {
        "uuid": "be3c67cc-ecd6-11f1-94c3-327ff925575b", "seqno": 1640, "domain_id": 0}
    assert parse_galera_info("garbage") == {}
    assert parse_binlog_gtid("mysql-bin.000003 385 0-1-17\n") == "0-1-17"
    assert parse_binlog_gtid("") is None


def raw(bid: str, **kw: object) -> dict[str, object]:
    return {"id": bid, "path": f"/b/{bid}", "manifest": None, "receiver": {}, "receiver_alive": False,
            "failure": None, "verify": None, "partial_size": 10, "mtime": 1000.0, **kw}


def test_only_a_manifest_makes_a_backup_complete() -> None:
    manifest = {"complete": True, "started_epoch": 1000.0, "size": 5, "donor": "s2",
                "position": {"uuid": "u", "seqno": 7}, "gtid": None}
    assert classify(raw("a-s2", manifest=manifest), 1100).state == "complete"
    assert classify(raw("a-s2", manifest=manifest, verify={"ok": True, "verified_epoch": 1050}), 1100).state \
        == "verified"
    assert classify(raw("a-s2", manifest=manifest, verify={"ok": False, "summary": "x"}), 1100).state \
        == "verify failed"
    # the receiver said complete but no manifest: never complete
    e = classify(raw("a-s2", receiver={"state": "complete", "started": 1000.0}), 1100)
    assert e.state == "failed" and not e.complete
    e = classify(raw("a-s2", receiver={"state": "receiving", "started": 1000.0}, receiver_alive=True), 1100)
    assert e.state == "in progress"
    e = classify(raw("a-s2", receiver={"state": "receiving", "started": 1000.0}), 1100)
    assert e.state == "failed" and "stopped" in e.reason
    e = classify(raw("a-s2", receiver={"state": "failed", "reason": "mbstream failed"}), 1100)
    assert e.reason == "mbstream failed" and e.donor == "s2"


def test_a_backup_with_crafter_content_counts_and_names_its_repositories_and_their_size() -> None:
    manifest = {"complete": True, "started_epoch": 1000.0, "size": 5, "donor": "s2",
                "position": {"uuid": "u", "seqno": 7}, "gtid": None,
                "content": {"dir": "repos", "size": 3, "files": 2, "repos": ["repos/global", "repos/sites/a"]}}
    e = classify(raw("a-s2", manifest=manifest), 1100)
    assert (e.content_repos, e.content_names, e.size) == (2, ["repos/global", "repos/sites/a"], 8)
    plain = classify(raw("a-s2", manifest={**manifest, "content": None}), 1100)
    assert (plain.content_repos, plain.content_names, plain.size) == (None, None, 5)


def entry(bid: str, age_days: float, state: str = "complete", now: float = 100 * DAY) -> Entry:
    return Entry(bid, f"/b/{bid}", state, now - age_days * DAY, age_days * DAY, 1, "s2", "u:1", 1, None, "", None)


def test_prune_keeps_the_newest_n_and_the_young() -> None:
    now = 100 * DAY
    es = [entry(f"b{i}", i) for i in range(6)]
    kept = {d.id for d in select(es, 2, 0, now) if d.keep}
    assert kept == {"b0", "b1"}
    kept = {d.id for d in select(es, 2, 4, now) if d.keep}
    assert kept == {"b0", "b1", "b2", "b3"}


def test_prune_never_removes_the_only_verified_backup_nor_one_in_progress() -> None:
    now = 100 * DAY
    es = [entry("b0", 0), entry("b1", 1), entry("b5", 5, "verified"), entry("b9", 9, "verified"),
          entry("run", 0.01, "in progress"), entry("bad", 2, "failed")]
    decisions = {d.id: d for d in select(es, 2, 0, now)}
    assert decisions["b5"].keep and "verified" in decisions["b5"].why
    assert not decisions["b9"].keep
    assert decisions["run"].keep
    assert not decisions["bad"].keep
    with pytest.raises(ValueError):
        select(es, 0, 0, now)


def test_verify_picks_an_id_or_a_unique_prefix_or_the_newest() -> None:
    ids = ["20261130T150000Z-s2", "20261130T160000Z-s1"]
    assert resolve_id(ids, None) == "20261130T160000Z-s1"
    assert resolve_id(ids, "20261130T15") == "20261130T150000Z-s2"
    with pytest.raises(BackupError, match="is the start of 2 backups' ids") as several:
        resolve_id(ids, "2026")
    assert "give more of the id" in several.value.hint
    with pytest.raises(BackupError, match="no complete backup has the id '20261129'") as none:
        resolve_id(ids, "20261129")
    assert "20261130T160000Z-s1" in none.value.hint
    with pytest.raises(BackupError, match="no complete backup yet"):
        resolve_id([], None)


def test_the_list_shows_a_position_short_enough_to_keep_its_seqno() -> None:
    """Newcomer finding: the table cut `b5cdb8d4-ee01-11f1-...:19` before its seqno, the part that tells backups
    apart."""
    from wizard.backups.catalog import short_position

    assert short_position("b5cdb8d4-ee01-11f1-9640-232ea505496f:19") == "b5cdb8d4:19"
    assert short_position(None) == "-"
    assert short_position("") == "-"
    assert short_position("odd") == "odd"
