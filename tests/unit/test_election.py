"""The bootstrap election: every case by hand, then properties over generated states."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wizard.agent.election import (
    BOOTSTRAP,
    DATADIR_DATA,
    DATADIR_EMPTY,
    DATADIR_SYSTEM,
    JOIN,
    REFUSE,
    WAIT,
    ZERO_UUID,
    Decision,
    NodeState,
    decide,
)
from wizard.agent.grastate import parse_grastate

U = "6d3bd3b4-c9b5-11ef-8a2b-0e3b1d4c5f60"
OTHER = "0b7e7c0a-1111-2222-3333-444455556666"
DATA = ["studio1", "studio2"]


def node(name: str, uuid: str = U, seqno: int = -1, safe: bool = False, recovered: int | None = None,
         running: bool = False, status: str = "", local: str = "", datadir: str = DATADIR_DATA) -> NodeState:
    return NodeState(name=name, uuid=uuid, seqno=seqno, safe_to_bootstrap=safe, recovered_seqno=recovered,
                     running=running, cluster_status=status, local_state=local, heartbeat=1700000000.5,
                     datadir=datadir)


def fresh(name: str) -> NodeState:
    """What the agent registers for a host Debian's package just initialised: no grastate.dat,
    ``--wsrep-recover`` found no position, only the system schemas."""
    return NodeState(name=name, recovered_seqno=-1, recovered_uuid=ZERO_UUID, datadir=DATADIR_SYSTEM)


def states(*nodes: NodeState) -> dict[str, NodeState]:
    return {n.name: n for n in nodes}


# -- by hand ---------------------------------------------------------------------------------------
def test_fresh_cluster_bootstraps_on_preferred() -> None:
    for preferred in DATA:
        d = decide(states(fresh("studio1"), fresh("studio2")), DATA, preferred)
        assert (d.kind, d.node, d.new_cluster) == (BOOTSTRAP, preferred, True)
        assert preferred in d.reason and "fresh" in d.reason
        assert not d.needs_safe_to_bootstrap


def test_safe_to_bootstrap_after_clean_shutdown() -> None:
    # garbd stopped first: the last data node out has safe_to_bootstrap=1 and the highest seqno.
    d = decide(states(node("studio1", seqno=40), node("studio2", seqno=42, safe=True)), DATA, "studio1")
    assert (d.kind, d.node, d.seqno, d.forced, d.new_cluster) == (BOOTSTRAP, "studio2", 42, False, False)
    assert "studio2" in d.reason and "42" in d.reason and "40" in d.reason


def test_safe_to_bootstrap_breaks_a_tie_before_preferred() -> None:
    d = decide(states(node("studio1", seqno=42), node("studio2", seqno=42, safe=True)), DATA, "studio1")
    assert d.node == "studio2"
    assert "safe_to_bootstrap=1" in d.reason


def test_safe_flag_on_a_node_behind_loses_to_the_higher_seqno() -> None:
    d = decide(states(node("studio1", seqno=50), node("studio2", seqno=42, safe=True)), DATA, "studio2")
    assert d.node == "studio1"
    assert "behind" in d.reason


def test_highest_recovered_seqno_after_crash() -> None:
    # Both crashed: grastate says seqno -1 and safe_to_bootstrap 0 everywhere; --wsrep-recover tells.
    d = decide(states(node("studio1", recovered=55), node("studio2", recovered=57)), DATA, "studio1")
    assert (d.kind, d.node, d.seqno) == (BOOTSTRAP, "studio2", 57)
    assert d.needs_safe_to_bootstrap
    assert "recovered seqno 57" in d.reason and "recovered seqno 55" in d.reason


def test_clean_seqno_against_recovered_seqno() -> None:
    d = decide(states(node("studio1", seqno=60), node("studio2", recovered=61)), DATA, "studio1")
    assert d.node == "studio2"


def test_zero_uuid_is_never_chosen() -> None:
    # studio1 was reinstalled (fresh), studio2 has history at a lower "number": studio2 bootstraps.
    d = decide(states(fresh("studio1"), node("studio2", seqno=3)), DATA, "studio1")
    assert (d.kind, d.node) == (BOOTSTRAP, "studio2")
    assert "studio1 (fresh" in d.reason
    # A zero uuid with a seqno (a damaged file) is no candidate: it blocks until recovery can tell.
    d = decide(states(node("studio1", uuid=ZERO_UUID, seqno=100), node("studio2", seqno=3)), DATA, "studio1")
    assert d.kind == REFUSE and "studio1" in d.reason


def test_zeroed_grastate_is_not_fresh_issue_7_input_1() -> None:
    """Galera zeroes grastate.dat while DDL runs; a crash then leaves the position only in InnoDB.
    The exact pure input of issue 7: b's state says nothing, so nobody may bootstrap over it."""
    d = decide({"a": NodeState("a", uuid=U, seqno=100), "b": NodeState("b", uuid=ZERO_UUID)}, ["a", "b"], "a")
    assert d.kind == REFUSE and d.node is None
    assert "b (position unknown" in d.reason and "--force-bootstrap" in d.reason and "--wsrep-recover" in d.reason
    # The agent ran --wsrep-recover on b: InnoDB holds a later position than a's: b bootstraps.
    b = NodeState("b", uuid=ZERO_UUID, recovered_uuid=U, recovered_seqno=140, datadir=DATADIR_DATA)
    d = decide({"a": NodeState("a", uuid=U, seqno=100, datadir=DATADIR_DATA), "b": b}, ["a", "b"], "a")
    assert (d.kind, d.node, d.seqno) == (BOOTSTRAP, "b", 140)
    assert d.needs_safe_to_bootstrap
    # --wsrep-recover failed on b: still unknown, still blocked, the reason says why.
    b = NodeState("b", uuid=ZERO_UUID, datadir=DATADIR_DATA, note="--wsrep-recover failed: InnoDB corrupt")
    d = decide({"a": NodeState("a", uuid=U, seqno=100), "b": b}, ["a", "b"], "a")
    assert d.kind == REFUSE and "InnoDB corrupt" in d.reason


@pytest.mark.parametrize("datadir", [DATADIR_DATA, DATADIR_SYSTEM, ""])
def test_missing_or_unreadable_grastate_with_innodb_data_is_unknown(datadir: str) -> None:
    d = decide(states(NodeState("studio1", datadir=datadir, note="grastate.dat unreadable"),
                      node("studio2", seqno=7)), DATA, "studio2")
    assert d.kind == REFUSE and "studio1" in d.reason


def test_a_failed_first_bootstrap_is_fresh_issue_7_input_2() -> None:
    # mariadbd aborted on its first start: grastate holds a uuid but no position, and InnoDB holds no
    # Galera position either (recovered -1): the node never committed anything.
    aborted = NodeState("studio1", uuid=U, seqno=-1, recovered_uuid=ZERO_UUID, recovered_seqno=-1,
                        datadir=DATADIR_SYSTEM)
    assert aborted.is_fresh and aborted.committed_nothing
    d = decide(states(aborted, fresh("studio2")), DATA, "studio1")
    assert (d.kind, d.node, d.new_cluster) == (BOOTSTRAP, "studio1", True)


def test_force_is_always_a_way_out_with_what_it_loses() -> None:
    stuck = NodeState("studio1", uuid=U, seqno=-1, datadir=DATADIR_SYSTEM, note="--wsrep-recover failed")
    d = decide(states(stuck, fresh("studio2")), DATA, "studio1")
    assert d.kind == REFUSE and "--force-bootstrap" in d.reason
    d = decide(states(stuck, fresh("studio2")), DATA, "studio1", force="studio1")
    assert (d.kind, d.node, d.forced) == (BOOTSTRAP, "studio1", True)
    assert "position is unknown" in d.reason
    # Forcing the node behind says what is lost.
    d = decide(states(node("studio1", seqno=5), stuck.__class__("studio2", uuid=U, seqno=9, datadir=DATADIR_DATA)),
               DATA, "studio1", force="studio1")
    assert d.kind == BOOTSTRAP and "ahead of studio1" in d.reason and "lost" in d.reason


def test_standalone_server_keeps_its_data_when_it_is_the_only_one() -> None:
    standalone = NodeState("studio2", recovered_uuid=ZERO_UUID, recovered_seqno=-1, datadir=DATADIR_DATA)
    assert standalone.is_standalone and not standalone.is_fresh
    d = decide(states(fresh("studio1"), standalone), DATA, "studio1")
    assert (d.kind, d.node, d.new_cluster) == (BOOTSTRAP, "studio2", True)
    assert "keeping its databases" in d.reason and "studio1 (fresh) join" in d.reason
    both = NodeState("studio1", recovered_uuid=ZERO_UUID, recovered_seqno=-1, datadir=DATADIR_DATA)
    d = decide(states(both, standalone), DATA, "studio1")
    assert d.kind == REFUSE and "--force-bootstrap" in d.reason
    d = decide(states(node("studio1", seqno=4), standalone), DATA, "studio1")
    assert d.kind == REFUSE


def test_empty_datadir_is_fresh_without_recovery() -> None:
    assert NodeState("studio1", datadir=DATADIR_EMPTY).is_fresh


def test_unknown_seqno_blocks_until_known() -> None:
    d = decide(states(node("studio1", seqno=-1, recovered=None), node("studio2", seqno=3)), DATA, "studio1")
    assert d.kind == REFUSE
    assert "studio1 (position unknown" in d.reason
    d = decide(states(node("studio1", seqno=-1, recovered=-1, datadir=DATADIR_SYSTEM),
                      node("studio2", recovered=3)), DATA, "studio1")
    assert d.node == "studio2"


def test_no_known_position_refuses() -> None:
    d = decide(states(node("studio1"), node("studio2")), DATA, "studio1")
    assert d.kind == REFUSE and d.node is None
    assert "studio1" in d.reason and "studio2" in d.reason and "position unknown" in d.reason


@pytest.mark.parametrize(("preferred", "winner"), [("studio1", "studio1"), ("studio2", "studio2")])
def test_ties_go_to_preferred(preferred: str, winner: str) -> None:
    d = decide(states(node("studio1", seqno=9), node("studio2", recovered=9)), DATA, preferred)
    assert d.node == winner
    assert "tied at seqno 9" in d.reason and "preferred" in d.reason


def test_ties_without_preferred_go_by_name() -> None:
    data = ["studio1", "studio2", "studio3"]
    s = states(node("studio1", seqno=1), node("studio2", seqno=9), node("studio3", seqno=9))
    assert decide(s, data, "studio1").node == "studio2"


@pytest.mark.parametrize("force", [None, "studio1", "studio2"])
def test_primary_running_means_join_even_with_force(force: str | None) -> None:
    s = states(node("studio1", recovered=5),
               node("studio2", running=True, status="Primary", local="Synced"))
    d = decide(s, DATA, "studio1", force=force)
    assert (d.kind, d.node, d.primary) == (JOIN, None, ("studio2",))
    assert "studio2" in d.reason
    if force:
        assert "ignored" in d.reason


def test_primary_running_means_join_even_when_a_node_is_missing() -> None:
    d = decide(states(node("studio2", running=True, status="Primary")), DATA, "studio1")
    assert (d.kind, d.primary) == (JOIN, ("studio2",))


def test_non_primary_running_node_is_not_a_primary() -> None:
    s = states(node("studio1", running=True, status="non-Primary"), node("studio2", seqno=4))
    s["studio1"].last_committed = 8
    d = decide(s, DATA, "studio2")
    assert (d.kind, d.node, d.seqno) == (BOOTSTRAP, "studio1", 8)


def test_missing_node_waits_naming_it() -> None:
    d = decide(states(node("studio1", seqno=5, safe=True)), DATA, "studio1")
    assert (d.kind, d.missing, d.node) == (WAIT, ("studio2",), None)
    assert "studio2" in d.reason
    d = decide({}, DATA, "studio1")
    assert d.missing == ("studio1", "studio2")


def test_arbiter_state_is_not_needed_and_not_counted() -> None:
    arb = NodeState(name="arbiter", role="arbiter", running=True, cluster_status="Primary")
    d = decide(states(fresh("studio1"), fresh("studio2"), arb), DATA, "studio1")
    assert (d.kind, d.node) == (BOOTSTRAP, "studio1")


def test_force_with_missing_node() -> None:
    d = decide(states(node("studio1", recovered=5)), DATA, "studio2", force="studio1")
    assert (d.kind, d.node, d.forced, d.seqno) == (BOOTSTRAP, "studio1", True, 5)
    assert "studio2" in d.reason and "forced" in d.reason


def test_force_on_a_missing_node_waits_for_it() -> None:
    d = decide(states(node("studio1", recovered=5)), DATA, "studio1", force="studio2")
    assert (d.kind, d.missing) == (WAIT, ("studio2",))


def test_force_overrides_the_higher_seqno_and_says_so() -> None:
    d = decide(states(node("studio1", seqno=10), node("studio2", seqno=12)), DATA, "studio1", force="studio1")
    assert (d.kind, d.node, d.forced) == (BOOTSTRAP, "studio1", True)
    assert "studio2 (seqno 12)" in d.reason and "lost" in d.reason


def test_force_always_wins_and_says_what_it_loses() -> None:
    unknown = decide(states(node("studio1"), node("studio2", seqno=3)), DATA, "studio1", force="studio1")
    assert unknown.kind == BOOTSTRAP and "position is unknown" in unknown.reason and "ahead" in unknown.reason
    fresh_one = decide(states(fresh("studio1"), node("studio2", seqno=3)), DATA, "studio1", force="studio1")
    assert fresh_one.kind == BOOTSTRAP and "studio1 holds no data" in fresh_one.reason
    fresh_alone = decide(states(fresh("studio1")), DATA, "studio1", force="studio1")
    assert fresh_alone.kind == BOOTSTRAP and "studio2 has not registered" in fresh_alone.reason
    stranger = decide(states(node("studio1", seqno=3)), DATA, "studio1", force="arbiter")
    assert stranger.kind == REFUSE and "not a data node" in stranger.reason
    absent = decide(states(node("studio1", seqno=3)), DATA, "studio1", force="studio2")
    assert absent.kind == WAIT and "studio2" in absent.reason


def test_force_among_fresh_nodes_picks_the_forced_one() -> None:
    d = decide(states(fresh("studio1"), fresh("studio2")), DATA, "studio1", force="studio2")
    assert (d.kind, d.node, d.new_cluster, d.forced) == (BOOTSTRAP, "studio2", True, True)


def test_uuid_mismatch_refuses_naming_nodes() -> None:
    s = states(node("studio1", seqno=5), node("studio2", uuid=OTHER, seqno=9))
    d = decide(s, DATA, "studio1")
    assert d.kind == REFUSE
    assert "studio1" in d.reason and "studio2" in d.reason and U in d.reason and OTHER in d.reason
    forced = decide(s, DATA, "studio1", force="studio1")
    assert (forced.kind, forced.node) == (BOOTSTRAP, "studio1")
    assert "SST" in forced.reason


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="preferred"):
        decide({}, DATA, "arbiter")
    with pytest.raises(ValueError):
        decide({}, [], "studio1")


def test_empty_force_is_no_force() -> None:
    assert decide(states(node("studio1", seqno=1)), DATA, "studio1", force="").kind == WAIT


# -- serialisation ----------------------------------------------------------------------------------
def test_node_state_round_trip_through_a_redis_hash() -> None:
    s = node("studio1", seqno=-1, recovered=57, running=True, status="Primary", local="Synced")
    s.cluster_size, s.last_committed = 3, 60
    raw = s.to_dict()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items())
    assert NodeState.from_dict(raw) == s
    as_bytes = {k.encode(): v.encode() for k, v in raw.items()}  # redis-py without decode_responses
    assert NodeState.from_dict(as_bytes) == s
    no_recovery = node("studio2").to_dict()
    assert no_recovery["recovered_seqno"] == ""
    assert NodeState.from_dict(no_recovery).recovered_seqno is None


def test_node_state_from_partial_hash_and_errors() -> None:
    s = NodeState.from_dict({"name": "studio1", "seqno": "4", "future_field": "x"})
    assert (s.uuid, s.seqno, s.running, s.recovered_seqno) == (ZERO_UUID, 4, False, None)
    with pytest.raises(ValueError, match="name"):
        NodeState.from_dict({"seqno": "4"})
    with pytest.raises(ValueError, match="seqno"):
        NodeState.from_dict({"name": "studio1", "seqno": "lots"})
    with pytest.raises(ValueError, match="running"):
        NodeState.from_dict({"name": "studio1", "running": "maybe"})


def test_node_state_from_grastate() -> None:
    gs = parse_grastate(f"uuid: {U}\nseqno: 12\nsafe_to_bootstrap: 1\n")
    s = NodeState.from_grastate("studio1", gs, running=False)
    assert (s.uuid, s.seqno, s.safe_to_bootstrap, s.effective_seqno) == (U, 12, True, 12)


def test_decision_round_trip() -> None:
    decisions = [
        decide(states(node("studio1", recovered=5), node("studio2", recovered=7)), DATA, "studio1"),
        decide(states(node("studio1")), DATA, "studio1"),
        decide(states(node("studio1", running=True, status="Primary")), DATA, "studio1"),
        decide(states(fresh("studio1"), fresh("studio2")), DATA, "studio2", force="studio2"),
    ]
    for d in decisions:
        raw = d.to_dict()
        assert all(isinstance(v, str) for v in raw.values())
        assert Decision.from_dict(raw) == d
        assert Decision.from_dict({k.encode(): v.encode() for k, v in raw.items()}) == d
    with pytest.raises(ValueError):
        Decision.from_dict({"kind": "panic"})


# -- properties -------------------------------------------------------------------------------------
NAMES = ["studio1", "studio2", "studio3"]
uuids = st.sampled_from([ZERO_UUID, U, U, U, OTHER])
seqnos = st.integers(min_value=-1, max_value=20)


@st.composite
def node_states(draw: st.DrawFn, name: str) -> NodeState:
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        return fresh(name)  # often enough that all-fresh clusters come up
    running = draw(st.booleans())
    return NodeState(
        name=name,
        uuid=draw(uuids),
        seqno=draw(seqnos),
        safe_to_bootstrap=draw(st.booleans()),
        recovered_seqno=draw(st.none() | seqnos),
        recovered_uuid=draw(st.sampled_from(["", ZERO_UUID, U, OTHER])),
        datadir=draw(st.sampled_from([DATADIR_EMPTY, DATADIR_SYSTEM, DATADIR_DATA, ""])),
        running=running,
        cluster_status=draw(st.sampled_from(["", "Primary", "non-Primary", "Disconnected"])) if running else "",
        local_state=draw(st.sampled_from(["", "Synced", "Joining", "Donor/Desynced"])) if running else "",
        last_committed=draw(seqnos),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, NodeState], list[str], str, str | None]:
    data = NAMES[: draw(st.integers(min_value=2, max_value=3))]
    present = draw(st.lists(st.sampled_from(data), unique=True))
    registered = {n: draw(node_states(n)) for n in present}
    preferred = draw(st.sampled_from(data))
    force = draw(st.none() | st.sampled_from([*data, "arbiter"]))
    return registered, data, preferred, force


@settings(max_examples=600, deadline=None)
@given(scenarios())
def test_properties(scenario: tuple[dict[str, NodeState], list[str], str, str | None]) -> None:
    registered, data, preferred, force = scenario
    d = decide(registered, data, preferred, force)
    assert d.reason
    assert decide(registered, data, preferred, force) == d  # pure: same input, same decision
    any_primary = any(s.is_primary for s in registered.values())
    # Never bootstrap while a Primary Component runs, whatever the force.
    if any_primary:
        assert d.kind == JOIN
        assert set(d.primary) == {n for n, s in registered.items() if s.is_primary}
    else:
        assert d.kind != JOIN
    if d.kind == WAIT:
        assert d.missing and all(n not in registered for n in d.missing)
    if d.kind != BOOTSTRAP:
        assert d.node is None
        return
    assert d.node in registered
    winner = registered[d.node]
    assert d.seqno == winner.effective_seqno
    if d.forced:
        assert d.node == force
        return
    assert force is None
    assert set(registered) == set(data)
    # Never bootstrap past a node whose position cannot be told.
    assert not any(s.is_unknown for s in registered.values())
    if d.new_cluster:
        # A new cluster only over nodes with nothing to lose, but for the one whose data it keeps.
        assert all(s.is_fresh or (s.is_standalone and n == d.node) for n, s in registered.items())
        if winner.is_fresh:
            assert d.node == preferred
        return
    # A node with history always bootstraps from a known position and a real cluster uuid, the highest.
    assert winner.is_candidate
    candidates = [s for s in registered.values() if s.is_candidate]
    best = max(s.effective_seqno for s in candidates if s.effective_seqno is not None)
    assert winner.effective_seqno == best
    assert len({s.galera_uuid for s in registered.values() if not s.has_zero_uuid}) == 1
    assert not any(s.is_standalone for s in registered.values())


# -- runs on the nodes' python ----------------------------------------------------------------------
AGENT_DIR = Path(__file__).resolve().parents[2] / "wizard" / "agent"
MY_AGENT_FILES = ["__init__.py", "election.py", "grastate.py", "health.py", "membership.py"]


@pytest.mark.parametrize("name", MY_AGENT_FILES)
def test_agent_module_is_python39_stdlib_only(name: str) -> None:
    source = (AGENT_DIR / name).read_text()
    tree = ast.parse(source, feature_version=(3, 9))  # no match, no parenthesised context managers...
    assert "from __future__ import annotations" in source
    stdlib = set(sys.stdlib_module_names)
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            roots = [a.name.split(".")[0] for a in n.names]
            assert all(r in stdlib for r in roots), roots
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            if n.module.startswith("wizard"):
                assert n.module.startswith("wizard.agent"), n.module
            else:
                assert n.module.split(".")[0] in stdlib, n.module
        elif isinstance(n, ast.keyword):
            assert n.arg not in ("slots", "kw_only"), "dataclass options newer than 3.9"


def test_agent_imports_nothing_heavy() -> None:
    code = ("import sys, wizard.agent.election, wizard.agent.grastate; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml', 'jinja2', 'fabric', "
            "'paramiko', 'textual') or (m.startswith('wizard.') and not m.startswith('wizard.agent'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stdout + out.stderr
