"""Who is in the Primary Component comes from the members' identities, never from a count."""

from __future__ import annotations

from tests.unit.monitor_values import U1, U2, UG, data_node, garbd, healthy, lab_profile, status, stopped, studio2_dead
from wizard.cluster_events import diff_status
from wizard.component import component_of


def test_a_healthy_cluster_has_everyone() -> None:
    view = component_of(healthy(lab_profile()))
    assert view.names == ["studio1", "studio2", "garbd"] and view.unknown == () and view.by_identity


def test_garbd_stays_in_when_a_data_node_dies() -> None:
    p = lab_profile()
    dead = studio2_dead(p, 2.0)
    view = component_of(dead)
    assert view.names == ["studio1", "garbd"]
    assert dead.verdict == "degraded"
    texts = [e.text for e in diff_status(healthy(p, 1.0), dead)]
    assert "studio2 left the Primary Component" in texts
    assert not any("garbd" in t and "left" in t for t in texts), texts


def test_a_dead_incarnation_is_an_unknown_member_and_the_new_garbd_is_not_in_yet() -> None:
    p = lab_profile()
    old = "88888888-dead"
    members = [U1, U2, old]  # size 3 after garbd's kill -9, but the third member is the corpse
    st = status(p, [data_node("studio1", U1, members), data_node("studio2", U2, members), garbd(UG)])
    view = component_of(st)
    assert view.garbd is False and view.unknown == (old,)
    texts = [e.text for e in diff_status(healthy(p), st)]
    assert "garbd left the component" in texts
    assert any("belong to no node of the profile" in t for t in texts)


def test_garbd_stopped_is_out_and_an_unanswering_arbiter_host_cannot_be_told() -> None:
    p = lab_profile()
    members = [U1, U2]
    st = status(p, [data_node("studio1", U1, members), data_node("studio2", U2, members), garbd(running=False)])
    assert component_of(st).garbd is False
    gone = garbd()
    gone.reachable, gone.garbd_uuid = False, ""
    st = status(p, [data_node("studio1", U1, [U1, U2, UG]), data_node("studio2", U2, [U1, U2, UG]), gone])
    assert component_of(st).garbd is None and component_of(st).names[-1] == "garbd?"


def test_without_member_lists_the_core_verdict_is_used() -> None:
    p = lab_profile()
    nodes = [data_node("studio1", U1, []), data_node("studio2", U2, []), garbd()]
    view = component_of(status(p, nodes))
    assert not view.by_identity and view.data_nodes == ("studio1", "studio2")


def test_no_primary_no_component() -> None:
    p = lab_profile()
    n1 = data_node("studio1", U1, [], wsrep_cluster_status="non-Primary")
    view = component_of(status(p, [n1, data_node("studio2", U2, [], wsrep_cluster_status="non-Primary"), garbd()]))
    assert view.names == [] and view.garbd is False


def test_the_core_verdict_keeps_garbd_when_a_data_node_dies() -> None:
    dead = studio2_dead(lab_profile())
    assert dead.arbiter_member and dead.reason == "studio2 mariadbd stopped"
    p = lab_profile()
    corpse = [U1, U2, "88888888-dead"]
    st = status(p, [data_node("studio1", U1, corpse), data_node("studio2", U2, corpse), garbd(UG)])
    assert not st.arbiter_member and st.verdict == "degraded"


def test_a_joining_node_that_does_not_answer_sql_yet_is_no_stranger() -> None:
    """Seen on the lab: studio2's mariadbd started, studio1 already counts its new uuid, studio2 itself
    does not answer SQL yet; that member is not 'a dead incarnation'."""
    p = lab_profile()
    joining = stopped("studio2")
    joining.process_running = True
    st = status(p, [data_node("studio1", U1, [U1, UG, "33333333-new"]), joining, garbd()])
    view = component_of(st)
    assert view.unknown == () and view.names == ["studio1", "garbd"]
    assert not any("belong to no node" in e.text for e in diff_status(studio2_dead(p), st))
