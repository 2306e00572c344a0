"""The fault suite's checker on hand-made observer moments: what counts as split-brain and what does not."""

from __future__ import annotations

from tests.faults.checker import missing, split_brain
from tests.faults.observer import Moment

ADDR = {"a": "10.0.0.1", "b": "10.0.0.2"}
U1, U2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def s(status: str, uuid: str = U1, conf: int = 5, members: str = "10.0.0.1:3306,10.0.0.2:3306",
      seqno: int = 100) -> dict[str, str]:
    return {"wsrep_cluster_status": status, "wsrep_cluster_state_uuid": uuid, "wsrep_cluster_conf_id": str(conf),
            "wsrep_incoming_addresses": members, "wsrep_last_committed": str(seqno)}


def test_one_component_is_not_split_brain() -> None:
    rep = split_brain([Moment(0.0, {"a": s("Primary"), "b": s("Primary")})], ADDR)
    assert rep.moments == [] and rep.skew_moments == 0


def test_a_down_or_non_primary_node_is_not_split_brain() -> None:
    rep = split_brain([Moment(0.0, {"a": s("Primary"), "b": {"down": "no socket"}}),
                       Moment(0.2, {"a": s("Primary", members="10.0.0.1:3306"), "b": s("non-Primary")})], ADDR)
    assert rep.moments == []


def test_two_clusters_are_split_brain() -> None:
    rep = split_brain([Moment(0.0, {"a": s("Primary", U1, members="10.0.0.1:3306"),
                                    "b": s("Primary", U2, members="10.0.0.2:3306")})], ADDR)
    assert len(rep.moments) == 1 and "two clusters" in rep.moments[0][1]


def test_disjoint_components_are_split_brain() -> None:
    rep = split_brain([Moment(0.0, {"a": s("Primary", conf=6, members="10.0.0.1:3306"),
                                    "b": s("Primary", conf=7, members="10.0.0.2:3306")})], ADDR)
    assert len(rep.moments) == 1 and "disjoint" in rep.moments[0][1]


def test_a_stale_view_that_resolves_quickly_is_only_skew() -> None:
    moments = [Moment(t / 5, {"a": s("Primary", conf=5), "b": s("Primary", conf=6, members="10.0.0.2:3306")})
               for t in range(10)]
    moments.append(Moment(2.2, {"a": s("non-Primary", conf=6, members="10.0.0.1:3306"),
                                "b": s("Primary", conf=6, members="10.0.0.2:3306")}))
    rep = split_brain(moments, ADDR)
    assert rep.moments == [] and rep.skew_moments == 10


def test_a_stale_view_that_commits_is_split_brain() -> None:
    moments = [Moment(0.0, {"a": s("Primary", seqno=100), "b": s("Primary", conf=6, members="10.0.0.2:3306")}),
               Moment(0.2, {"a": s("Primary", seqno=101), "b": s("Primary", conf=6, members="10.0.0.2:3306")})]
    rep = split_brain(moments, ADDR)
    assert len(rep.moments) == 1 and "commits" in rep.moments[0][1]


def test_a_stale_view_that_lasts_is_split_brain() -> None:
    moments = [Moment(t * 1.0, {"a": s("Primary"), "b": s("Primary", conf=6, members="10.0.0.2:3306")})
               for t in range(12)]
    rep = split_brain(moments, ADDR)
    assert any("stale view for" in m for _, m in rep.moments)


def test_missing_lists_acknowledged_ids_a_node_lacks() -> None:
    assert missing({1, 2, 3, 4}, {1, 3, 5}) == [2, 4]
