"""The checker's pure logic: lost rows, differences between nodes, split-brain moments, percentiles.

Split-brain from the observer's moments: at one moment two nodes both report Primary and
  * their cluster state uuids differ (two clusters), or
  * neither component contains the other (disjoint membership), or
  * one holds an older view (a lower conf id) that does not yet know the other left, and it either commits
    meanwhile (its last committed seqno advances) or keeps that stale Primary view for more than
    ``STALE_LIMIT`` seconds (Galera gives up a lost peer after evs.suspect_timeout, 5 s here).
A stale view that resolves in time without committing is counted apart as *view skew*: it is what any
observer of a healthy cluster sees for a moment while a view change spreads.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.faults.observer import Moment

STALE_LIMIT = 10.0


@dataclass
class SplitBrainReport:
    moments: list[tuple[float, str]] = field(default_factory=list)  # (wall time, what)
    skew_moments: int = 0


def _members(sample: Mapping[str, str]) -> set[str]:
    return {a.rsplit(":", 1)[0] for a in sample.get("wsrep_incoming_addresses", "").split(",") if a.strip()}


def _int(sample: Mapping[str, str], k: str) -> int:
    try:
        return int(sample.get(k, "-1"))
    except ValueError:
        return -1


def split_brain(moments: Sequence[Moment], addresses: Mapping[str, str]) -> SplitBrainReport:
    """Scan `moments` (in time order); `addresses` maps node name -> the address in
    ``wsrep_incoming_addresses``.  Returns every split-brain moment and the count of view-skew moments."""
    rep = SplitBrainReport()
    stale_since: dict[tuple[str, str], tuple[float, int]] = {}  # (stale node, other) -> (start, its seqno)
    for m in moments:
        prim = {n: s for n, s in m.samples.items() if s.get("wsrep_cluster_status") == "Primary"}
        seen: set[tuple[str, str]] = set()
        names = sorted(prim)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                sa, sb = prim[a], prim[b]
                if sa.get("wsrep_cluster_state_uuid") != sb.get("wsrep_cluster_state_uuid"):
                    rep.moments.append((m.t, f"{a} and {b} Primary in two clusters "
                                             f"({sa.get('wsrep_cluster_state_uuid')} / "
                                             f"{sb.get('wsrep_cluster_state_uuid')})"))
                    continue
                a_has_b = addresses.get(b) in _members(sa)
                b_has_a = addresses.get(a) in _members(sb)
                if a_has_b and b_has_a:
                    continue
                if not a_has_b and not b_has_a:
                    rep.moments.append((m.t, f"{a} and {b} Primary in disjoint components "
                                             f"(conf {sa.get('wsrep_cluster_conf_id')} / "
                                             f"{sb.get('wsrep_cluster_conf_id')})"))
                    continue
                stale, other = (a, b) if a_has_b else (b, a)  # the stale one still lists the other
                key = (stale, other)
                seen.add(key)
                seqno = _int(prim[stale], "wsrep_last_committed")
                start, first_seqno = stale_since.setdefault(key, (m.t, seqno))
                if seqno > first_seqno:
                    rep.moments.append((m.t, f"{stale} commits (seqno {first_seqno} -> {seqno}) in a stale Primary "
                                             f"view while {other} is Primary without it"))
                elif m.t - start > STALE_LIMIT:
                    rep.moments.append((m.t, f"{stale} stays Primary in a stale view for {m.t - start:.1f} s "
                                             f"while {other} is Primary without it"))
                else:
                    rep.skew_moments += 1
        for key in list(stale_since):
            if key not in seen:
                del stale_since[key]
    return rep


def missing(acked: set[int], present: set[int]) -> list[int]:
    """Acknowledged ids a node does not have, sorted."""
    return sorted(acked - present)


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None
