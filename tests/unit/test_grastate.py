"""grastate.dat parsing, the safe_to_bootstrap fix-up and recovered positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.agent.grastate import (
    FRESH,
    ZERO_UUID,
    GraState,
    GraStateError,
    parse_grastate,
    parse_recovered_position,
    read_grastate,
    set_safe_to_bootstrap,
)

UUID = "6d3bd3b4-c9b5-11ef-8a2b-0e3b1d4c5f60"
DEBIAN = f"# GALERA saved state\nversion: 2.1\nuuid:    {UUID}\nseqno:   -1\nsafe_to_bootstrap: 0\n"
CLEAN = f"# GALERA saved state\nversion: 2.1\nuuid:    {UUID}\nseqno:   1234\nsafe_to_bootstrap: 1\n"


def test_parse_crashed_or_running() -> None:
    assert parse_grastate(DEBIAN) == GraState(uuid=UUID, seqno=-1, safe_to_bootstrap=False)


def test_parse_clean_shutdown() -> None:
    gs = parse_grastate(CLEAN)
    assert (gs.uuid, gs.seqno, gs.safe_to_bootstrap) == (UUID, 1234, True)
    assert not gs.has_zero_uuid and not gs.is_fresh


def test_missing_file_is_fresh(tmp_path: Path) -> None:
    for gs in (parse_grastate(None), parse_grastate(""), read_grastate(str(tmp_path / "grastate.dat"))):
        assert gs == FRESH
        assert (gs.uuid, gs.seqno, gs.safe_to_bootstrap) == (ZERO_UUID, -1, False)
        assert gs.is_fresh


def test_zero_uuid_file() -> None:
    gs = parse_grastate(f"# GALERA saved state\nversion: 2.1\nuuid: {ZERO_UUID}\nseqno: -1\nsafe_to_bootstrap: 0\n")
    assert gs.is_fresh and gs.has_zero_uuid


def test_older_file_without_safe_to_bootstrap() -> None:
    gs = parse_grastate(f"# GALERA saved state\nversion: 2.1\nuuid: {UUID}\nseqno: 7\n")
    assert gs == GraState(UUID, 7, False)


def test_uppercase_uuid_is_normalised() -> None:
    assert parse_grastate(DEBIAN.replace(UUID, UUID.upper())).uuid == UUID


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# GALERA saved state\nversion: 2.1\n", "no uuid and no seqno"),
        (f"uuid: {UUID}\n", "no seqno"),
        ("uuid: not-a-uuid\nseqno: 1\n", "not a UUID"),
        (f"uuid: {UUID}\nseqno: many\n", "not a number"),
        (f"uuid: {UUID}\nseqno: -2\n", "below -1"),
        (f"uuid: {UUID}\nseqno: 1\nsafe_to_bootstrap: 2\n", "neither 0 nor 1"),
    ],
)
def test_garbled_files_are_errors(text: str, message: str) -> None:
    with pytest.raises(GraStateError, match=message):
        parse_grastate(text)


def test_read_grastate_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "grastate.dat"
    path.write_text(CLEAN)
    assert read_grastate(str(path)).seqno == 1234
    path.write_text("garbage\n")
    with pytest.raises(GraStateError, match=str(path)):
        read_grastate(str(path))


def test_set_safe_to_bootstrap() -> None:
    fixed = set_safe_to_bootstrap(DEBIAN)
    assert fixed == DEBIAN.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1")
    assert parse_grastate(fixed).safe_to_bootstrap
    assert set_safe_to_bootstrap(fixed) == fixed  # idempotent


def test_set_safe_to_bootstrap_adds_the_line() -> None:
    text = f"# GALERA saved state\nversion: 2.1\nuuid: {UUID}\nseqno: 7"
    fixed = set_safe_to_bootstrap(text)
    assert fixed.endswith("seqno: 7\nsafe_to_bootstrap: 1\n")
    assert parse_grastate(fixed) == GraState(UUID, 7, True)


RECOVER_LOG = f"""\
2026-01-02 10:00:00 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision as process 4242
2026-01-02 10:00:00 0 [Note] InnoDB: Number of transaction pools: 1
2026-01-02 10:00:00 0 [Note] WSREP: Recovered position from storage: {UUID}:57
2026-01-02 10:00:00 0 [Note] WSREP: Recovered position: {UUID}:57
"""


def test_recovered_position_from_wsrep_recover_log() -> None:
    assert parse_recovered_position(RECOVER_LOG) == (UUID, 57)


def test_recovered_position_from_galera_recovery_stdout() -> None:
    assert parse_recovered_position(f"--wsrep_start_position={UUID}:1234\n") == (UUID, 1234)
    assert parse_recovered_position(f"--wsrep-start-position={UUID.upper()}:3,0-1-3\n") == (UUID, 3)


def test_recovered_position_unknown_and_absent() -> None:
    assert parse_recovered_position(f"[Note] WSREP: Recovered position: {ZERO_UUID}:-1\n") == (ZERO_UUID, -1)
    assert parse_recovered_position("[Note] WSREP: Position recovery skipped.\n") is None
    assert parse_recovered_position("") is None


def test_last_recovered_position_wins() -> None:
    two_runs = RECOVER_LOG + RECOVER_LOG.replace(":57", ":60")
    assert parse_recovered_position(two_runs) == (UUID, 60)


def test_classify_datadir() -> None:
    from wizard.agent.grastate import classify_datadir

    assert classify_datadir(None) == "empty"
    assert classify_datadir([]) == "empty"
    assert classify_datadir([("lost+found", True)]) == "empty"
    system = [("ibdata1", False), ("mysql", True), ("performance_schema", True), ("sys", True),
              ("grastate.dat", False), ("#innodb_temp", True), (".sst", True), ("aria_log.00000001", False)]
    assert classify_datadir(system) == "system"
    assert classify_datadir([*system, ("crafter", True)]) == "data"
    assert classify_datadir([*system, ("notes.txt", False)]) == "system"


def test_render_grastate_round_trips() -> None:
    from wizard.agent.grastate import parse_grastate, render_grastate

    gs = parse_grastate(render_grastate("6d3bd3b4-c9b5-11ef-8a2b-0e3b1d4c5f60", 140, True))
    assert (gs.uuid, gs.seqno, gs.safe_to_bootstrap) == ("6d3bd3b4-c9b5-11ef-8a2b-0e3b1d4c5f60", 140, True)
