"""docs/reliability.md: what is promised, how the fault suite tests it, and the last run's numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.faults.nemesis import KINDS
from tests.faults.suite import ScheduleResult, table

PROMISE = """# Reliability: nothing acknowledged is lost

## What is promised

After any single fault below, `studio-cluster recover profiles/lab.yaml` (the product alone, no manual
step) brings the cluster back to healthy (both data nodes Primary and Synced, garbd a member) and:

- every write whose commit was acknowledged to a client is on every data node;
- both data nodes hold the same rows (row count and checksum per node);
- there were never two Primary Components at once;
- no configuration file is left half-written, and every replaced file has a backup under
  `/var/backups/studio-cluster/` on its host.

## How it is tested

`make faults SEED=N SCHEDULES=K` (default 20 schedules; `tests/faults/`, on the real lab, no mocks):

- **writer** (`writer.py`): numbered rows, one autocommit `INSERT` each, through the authoring name
  `studio.lab.test` (resolved through the lab's PowerDNS at every reconnect) with a dedicated account and
  database (`faultwriter`, `faults.acked`); a row is *acknowledged* only when its commit returned OK. A row
  whose commit got no answer is *in doubt* and never counted as lost.
- **observer** (`observer.py`): every 0.2 s, each data node's `wsrep_cluster_status`, state, conf id,
  cluster state uuid, size, members and last committed seqno, read with `nsenter` and the local socket,
  so a partitioned node is still seen.
- **nemesis** (`nemesis.py`, `random.Random(f"{seed}:{schedule}")`): 1-3 faults per schedule, every target
  and delay drawn up front. Kinds:
{kinds}
- after each fault only `studio-cluster recover profiles/lab.yaml` runs (a second run is allowed and
  counted; a run that still fails is a failed recovery, the cluster is then rescued by hand only so that
  its rows can be checked);
- each schedule also strikes one more fault of a kind it saw and recovers it **by hand** with the
  documented procedure (`manual.py`: `galera_recovery` on each node, highest seqno, `safe_to_bootstrap`,
  `--wsrep-new-cluster`, the other node, then garbd; a single lost node is just restarted), for the
  recovery-time yardstick;
- **checker** (`checker.py`, `suite.py`): the acknowledged ids against each node's table (read with
  `wsrep_sync_wait`), count + checksum of `faults.acked` and `faults.big` per node, split-brain moments
  from the observer (two Primary nodes in different clusters or disjoint components, or a stale Primary
  view that commits or lasts over 10 s; a stale view that resolves within Galera's suspect timeout is only
  counted as *view skew*), every rendered file equal to what is on the node, a backup of every file a
  recovery replaced.

Recovery time: from the end of the fault (process gone, partition healed) to `recover` exiting 0, or, by
hand, to `studio-cluster status`'s verdict healthy. A three-schedule smoke (`tests/faults/test_smoke.py`)
runs in `make test`.
"""


def write_report(path: Path, summary: dict[str, Any], found: list[str], *, seed: int, schedules: int, short: bool,
                 started: float, results: list[ScheduleResult], progress: str = "") -> None:
    """Write the promise, the method and this run's table and findings to `path` (Markdown)."""
    kinds = "\n".join(f"  - `{k.name}`: {k.what}" for k in KINDS.values())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    body = PROMISE.replace("{kinds}", kinds)
    body += (f"\n## Last run\n\n`make faults SEED={seed} SCHEDULES={schedules}`{' (short)' if short else ''}, "
             f"started {when}, {sum(r.seconds for r in results) / 60:.1f} min of schedules"
             + (f" (IN PROGRESS: {progress})" if progress else "") + ".\n\n" + table(summary) + "\n")
    body += "\n## Findings\n\n" + ("\n".join(found) if found else "None: every schedule was clean.") + "\n"
    path.write_text(body)
