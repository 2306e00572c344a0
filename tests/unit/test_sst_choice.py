"""The SST-choice rule (wizard.agent.sst_choice): rsync only for the first join of a brand-new, small cluster."""

from __future__ import annotations

from pathlib import Path

from wizard.agent import sst_choice
from wizard.agent.sst_choice import choose, datadir_bytes, option, tls_option

SMALL = {"studio1": {"bytes": str(120 * 2**20), "rsync": "1"}}


def test_brand_new_small_cluster_gets_rsync() -> None:
    method, why = choose("mariabackup", True, SMALL, True)
    assert method == "rsync"
    assert "brand-new" in why and "studio1 120.0 MiB" in why


def test_every_other_join_keeps_the_configured_method() -> None:
    assert choose("mariabackup", False, SMALL, True)[0] is None  # a cluster formed before this run
    assert choose("rsync", True, SMALL, True)[0] is None  # only mariabackup is ever replaced
    assert choose("mariabackup", True, {}, True)[0] is None  # no donor facts (an older agent)
    assert choose("mariabackup", True, SMALL, False)[0] is None  # no rsync here
    no_rsync = {"studio1": {"bytes": "10", "rsync": "0"}}
    assert "missing on studio1" in choose("mariabackup", True, no_rsync, True)[1]
    unknown = {"studio1": {"bytes": "-1", "rsync": "1"}}
    assert "unknown" in choose("mariabackup", True, unknown, True)[1]
    garbage = {"studio1": {"bytes": "x", "rsync": "1"}}
    assert choose("mariabackup", True, garbage, True)[0] is None


def test_a_large_donor_keeps_mariabackup() -> None:
    big = {"studio1": {"bytes": str(300 * 2**20), "rsync": "1"}}
    method, why = choose("mariabackup", True, big, True)
    assert method is None and "over 256 MiB" in why
    assert choose("mariabackup", True, big, True, limit=400 * 2**20)[0] == "rsync"


def test_tls_keeps_mariabackup() -> None:
    method, why = choose("mariabackup", True, SMALL, True, tls="tcert=/etc/x.pem")
    assert method is None and "TLS" in why and "tcert" in why


def test_tls_option_reads_my_print_defaults_lines() -> None:
    assert tls_option(["--datadir=/var/lib/mysql", "--wsrep_sst_method=mariabackup"]) == ""
    assert tls_option(["--ssl_cert=/etc/mysql/c.pem"]) == "ssl-cert=/etc/mysql/c.pem"
    assert tls_option(["--encrypt=0"]) == ""
    assert tls_option(["--encrypt=4"]) == "encrypt=4"
    assert tls_option(["--ssl-mode=DISABLED"]) == ""
    assert option(["--wsrep_sst_method=rsync", "--wsrep-sst-method=mariabackup"], "wsrep_sst_method") == "mariabackup"
    assert option([], "wsrep_sst_method") is None


def test_datadir_bytes_counts_and_stops_past_the_limit(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "ibdata1").write_bytes(b"x" * 1000)
    (tmp_path / "db" / "t.ibd").write_bytes(b"y" * 500)
    assert datadir_bytes(str(tmp_path), 10_000) == 1500
    assert datadir_bytes(str(tmp_path), 100) > 100
    assert datadir_bytes(str(tmp_path / "missing"), 100) == -1
    facts = sst_choice.facts(str(tmp_path))
    assert facts["bytes"] == "1500" and facts["rsync"] in ("0", "1")
