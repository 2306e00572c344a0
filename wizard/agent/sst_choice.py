"""Which state transfer a joining data node asks for (the rule and its measurements: docs/sst-choice.md).

Galera runs on the donor the SST method the *joiner* asks for.  mariabackup (the method profiles configure)
keeps the donor serving, but its donor script waits a fixed 10 s before it sends anything, whatever the data
size; rsync has no such wait but holds ``FLUSH TABLES WITH READ LOCK`` on the donor for the whole copy.  So a
joiner asks for rsync only for the first join of a cluster this very run forms brand new (the election's
``new_cluster``: nothing was served by it yet) whose donor holds little data, and keeps the configured method
for every other join.  It also keeps it when TLS is configured for the server or SST (Debian's rsync SST
encrypts through stunnel, which these hosts do not have) or when rsync is missing on either side.

Every data agent publishes its :func:`facts` (datadir size, rsync present) under the run at registration;
the joiner reads its donors' facts and calls the pure :func:`choose`.

Runs on a node: python3 >= 3.9, stdlib only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

RSYNC = "rsync"
REPLACEABLE = "mariabackup"  # the only configured method ever replaced (the non-blocking one, with its wait)
DEFAULT_LIMIT_BYTES = 256 * 2**20  # a donor above this keeps mariabackup (docs/sst-choice.md: why 256 MiB)
FACTS_TTL_S = 3600
# Options that make Debian's SST scripts encrypt ([mysqld] ssl-*, [sst] t*), names with '-' (see tls_option)
TLS_OPTIONS = ("ssl-ca", "ssl-cert", "ssl-key", "ssl-capath", "tca", "tcert", "tkey", "tcapath", "encrypt",
               "ssl-mode")


def datadir_bytes(path: str, limit: int) -> int:
    """Bytes of the regular files under ``path`` (symlinks not followed); counting stops once past ``limit``
    (the result is then ``> limit``, not the full size).  -1 when ``path`` cannot be read."""
    total = 0
    try:
        for root, _dirs, files in os.walk(path, onerror=_raise):
            for name in files:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue  # removed since listed
                total += st.st_size
                if total > limit:
                    return total
    except OSError:
        return -1
    return total


def _raise(exc: OSError) -> None:
    raise exc


def rsync_available() -> bool:
    """rsync and Debian's ``wsrep_sst_rsync`` script are both on PATH."""
    return bool(shutil.which("rsync")) and bool(shutil.which("wsrep_sst_rsync"))


def facts(data_dir: str, limit: int = DEFAULT_LIMIT_BYTES) -> Dict[str, str]:
    """What a donor must tell a joiner: ``{"bytes": str(datadir_bytes), "rsync": "1"|"0"}``."""
    return {"bytes": str(datadir_bytes(data_dir, limit)), "rsync": "1" if rsync_available() else "0"}


def server_options() -> List[str]:
    """``my_print_defaults --mysqld sst``: the options mariadbd and the SST scripts read, one per line
    (``--name=value``); [] when the tool is missing or fails."""
    try:
        p = subprocess.run(["my_print_defaults", "--mysqld", "sst"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return p.stdout.splitlines() if p.returncode == 0 else []


def option(lines: Sequence[str], name: str) -> Optional[str]:
    """The last value of option ``name`` (``-`` and ``_`` alike) in ``--name=value`` lines; None when absent."""
    want = name.replace("_", "-")
    value = None
    for line in lines:
        key, _, val = line.strip().lstrip("-").partition("=")
        if key.replace("_", "-") == want:
            value = val
    return value


def tls_option(lines: Sequence[str]) -> str:
    """The first option in ``lines`` that turns TLS on for the server or its SST ("" when none): ``encrypt=0``
    and ``ssl-mode=DISABLED`` do not."""
    for name in TLS_OPTIONS:
        value = option(lines, name)
        if value is None or value == "":
            continue
        if (name == "encrypt" and value.strip() == "0") or (name == "ssl-mode" and value.strip().upper() == "DISABLED"):
            continue
        return "%s=%s" % (name, value)
    return ""


def choose(configured: str, new_cluster: bool, donors: Mapping[str, Mapping[str, Any]], joiner_rsync: bool,
           tls: str = "", limit: int = DEFAULT_LIMIT_BYTES) -> Tuple[Optional[str], str]:
    """``(method, reason)``: ``method`` is ``"rsync"`` when the joiner should ask for it instead of the
    ``configured`` method, else None (keep the configured one); ``reason`` says why, for the event log.

    ``new_cluster``: this run's election formed a brand-new cluster; ``donors``: the facts (:func:`facts`) of
    each data node in the Primary Component, by name (a node without facts counts as unknown);
    ``joiner_rsync``: :func:`rsync_available` on the joiner; ``tls``: :func:`tls_option` of the joiner's
    options (the nodes share one configuration); ``limit``: the largest donor datadir, in bytes."""
    keep = "keeping %s SST" % (configured or "the configured")
    if configured.strip().lower() != REPLACEABLE:
        return None, "%s: only mariabackup is ever replaced" % keep
    if not new_cluster:
        return None, "%s: a join into a cluster formed before this run (it may be serving; rsync would block " \
                     "its donor)" % keep
    if tls:
        return None, "%s: TLS is configured (%s) and rsync SST would need stunnel" % (keep, tls)
    if not joiner_rsync:
        return None, "%s: rsync or wsrep_sst_rsync is missing on this node" % keep
    if not donors:
        return None, "%s: no donor has published its data size" % keep
    sizes = []
    for name, f in sorted(donors.items()):
        try:
            size = int(f.get("bytes", -1))
        except (TypeError, ValueError):
            size = -1
        if str(f.get("rsync", "0")) != "1":
            return None, "%s: rsync or wsrep_sst_rsync is missing on %s" % (keep, name)
        if size < 0:
            return None, "%s: the data size of %s is unknown" % (keep, name)
        if size > limit:
            return None, "%s: %s holds over %d MiB (rsync would block it too long)" % (keep, name, limit // 2**20)
        sizes.append("%s %.1f MiB" % (name, size / 2**20))
    return RSYNC, ("rsync SST for the first join of a brand-new cluster (%s, at most %d MiB; no mariabackup "
                   "10 s wait); later joins keep %s" % (", ".join(sizes), limit // 2**20, configured))


# -- Redis glue (the client is the agent's redis-py connection) -----------------------------------------------
def facts_key(prefix: str, run_id: str, node: str) -> str:
    return "%s:run:%s:sst:%s" % (prefix, run_id, node)


def publish(r: Any, prefix: str, run_id: str, node: str, data: Mapping[str, str]) -> None:
    """This node's facts under the run, for an hour."""
    key = facts_key(prefix, run_id, node)
    pipe = r.pipeline()
    pipe.delete(key)
    pipe.hset(key, mapping=dict(data))
    pipe.expire(key, FACTS_TTL_S)
    pipe.execute()


def read(r: Any, prefix: str, run_id: str, nodes: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """The published facts of ``nodes`` in this run, by name (a node that published none is left out)."""
    pipe = r.pipeline()
    for n in nodes:
        pipe.hgetall(facts_key(prefix, run_id, n))
    out: Dict[str, Dict[str, str]] = {}
    for n, raw in zip(nodes, pipe.execute()):
        if raw:
            out[n] = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
                      for k, v in raw.items()}
    return out
