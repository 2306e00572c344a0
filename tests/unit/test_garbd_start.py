"""When the Arbiter's agent starts a garbd that is not running (issue 12), and how a late joiner learns that this
run formed a brand-new cluster (its rsync first join).  Pure functions of the registrations / the decision hash."""

from __future__ import annotations

from wizard.agent.election import NodeState
from wizard.agent.runtime import component_holds_data_nodes, recorded_new_cluster

DATA = ["studio1", "studio2"]


def reg(name: str, status: str = "Primary", local: str = "Synced", members: str = "",
        running: bool = True) -> NodeState:
    return NodeState(name=name, running=running, cluster_status=status, local_state=local, members=members)


def test_garbd_waits_while_only_the_first_node_is_in_the_component() -> None:
    # the bootstrapped node alone: the joiner is about to start; a garbd joining in that moment delays its view
    assert not component_holds_data_nodes({"studio1": reg("studio1", members="u1=studio1")}, DATA)
    assert not component_holds_data_nodes({"studio1": reg("studio1", members="u1=studio1"),
                                           "studio2": reg("studio2", running=False, status="", local="")}, DATA)


def test_garbd_starts_once_the_joiner_is_in_the_component_whatever_its_state() -> None:
    donor = reg("studio1", local="Donor/Desynced", members="u1=studio1,u2=studio2")
    joiner = reg("studio2", status="", local="")  # in its SST: it answers no SQL yet
    assert component_holds_data_nodes({"studio1": donor, "studio2": joiner}, DATA)


def test_a_non_primary_or_stopped_view_never_starts_garbd() -> None:
    both = "u1=studio1,u2=studio2"
    assert not component_holds_data_nodes({"studio1": reg("studio1", status="non-Primary", members=both)}, DATA)
    assert not component_holds_data_nodes({"studio1": reg("studio1", running=False, members=both)}, DATA)
    # a dead garbd incarnation in the view is no data node
    assert not component_holds_data_nodes({"studio1": reg("studio1", members="u1=studio1,g1=garb")}, DATA)
    assert not component_holds_data_nodes({}, DATA)


def test_names_not_lab_names() -> None:
    nodes = ["db-a.example", "db-b.example"]
    st = reg("db-a.example", members="x=db-a.example,y=db-b.example,z=garb")
    assert component_holds_data_nodes({"db-a.example": st}, nodes)


def test_only_this_runs_brand_new_decision_counts() -> None:
    assert recorded_new_cluster({"run": "r1", "new_cluster": "1", "node": "studio1"}, "r1")
    assert not recorded_new_cluster({"run": "r0", "new_cluster": "1"}, "r1")  # an earlier run's bootstrap
    assert not recorded_new_cluster({"run": "r1", "new_cluster": "0"}, "r1")  # a recovery's bootstrap
    assert not recorded_new_cluster({"run": "r1"}, "r1")  # an older agent wrote it
    assert not recorded_new_cluster({}, "r1")
    assert not recorded_new_cluster({"run": "", "new_cluster": "1"}, "")


def test_a_killed_servers_former_incarnation_is_seen_in_the_others_heartbeat() -> None:
    from wizard.agent.runtime import listing_former_incarnation

    survivor = reg("studio1", members="u1=studio1,old2=studio2,g=garb")
    assert listing_former_incarnation({"studio1": survivor}, "studio2") == ["studio1"]
    evicted = reg("studio1", members="u1=studio1,g=garb")
    assert listing_former_incarnation({"studio1": evicted}, "studio2") == []
    # a non-Primary or stopped peer holds no component to join; a node's own heartbeat never counts
    assert listing_former_incarnation({"studio1": reg("studio1", status="non-Primary",
                                                      members="u1=studio1,old2=studio2")}, "studio2") == []
    assert listing_former_incarnation({"studio2": reg("studio2", members="x=studio2")}, "studio2") == []
    assert listing_former_incarnation({}, "studio2") == []

