"""garbd is counted by its identity in the component, never by the size alone (issue 7 input 4)."""

from __future__ import annotations

from wizard.agent.membership import is_member, parse_gvwstate_uuid

S1, S2 = "b9484120-ecce-11f1-88b7-8343669929c6", "b99fb547-ecce-11f1-9640-232ea505496f"
DEAD, NEW = "c1a9366f-ecce-11f1-aa79-0ba16d806e0d", "d7c2e0aa-ecce-11f1-8c3e-2a1b3c4d5e6f"


def test_a_dead_incarnation_does_not_count_for_the_new_garbd() -> None:
    assert not is_member(NEW, [S1, S2, DEAD], 3)  # size 3, but the third is the corpse
    assert not is_member(NEW, [S1, S2, DEAD, NEW], 3)  # both: the corpse not yet evicted
    assert not is_member(NEW, [S1, S2], 3)  # evicted, the new one not yet in
    assert is_member(NEW, [S1, S2, NEW], 3)
    assert not is_member("", [S1, S2, NEW], 3)  # identity unknown: not shown to be a member


def test_parse_gvwstate_uuid() -> None:
    text = f"my_uuid: {NEW}\n#vwbeg\nview_id: 3 {S1} 5\nbootstrap: 0\nmember: {S1} 0\n#vwend\n"
    assert parse_gvwstate_uuid(text) == NEW
    assert parse_gvwstate_uuid("") == ""
