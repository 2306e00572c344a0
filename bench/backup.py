"""Benchmark: `backup take` against a raw mariabackup stream to the Arbiter host, in one run, as a ratio.

The baseline is the floor of the same job over the same lab link: on the donor
``mariabackup --backup --galera-info --stream=xbstream | socat -u STDIN TCP:ARBITER:PORT`` into
``socat -u TCP-LISTEN:PORT STDOUT | mbstream -x -C DIR`` on the Arbiter, timed from starting the listener to
mbstream's exit.  The product is ``take()`` (receiver, backup garbd joining, donor desync, the donor script's
stream, the receiver's checks and sha256 manifest, the donor back to Synced), timed around the call.

One run: ``lab down; lab up``, ``replay``, a data set of ``--rows`` rows of 1000 random bytes (``INSERT ...
SELECT RANDOM_BYTES(1000) FROM seq_1_to_N`` in chunks on studio1, replicated to studio2, the donor), then
``--rounds`` rounds of baseline then take, each copy removed after its round; the data set is dropped and the
lab torn down and brought up empty at the end.  Hold the lab lock around it (``make bench-backup`` does).

    flock /tmp/studio-lab.lock .venv/bin/python bench/backup.py [--rounds N] [--rows N] [--out docs/bench-backup.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wizard import lab  # noqa: E402
from wizard.backups.take import Progress, take  # noqa: E402
from wizard.nodesql import sql, wsrep_status  # noqa: E402
from wizard.pipeline import replay  # noqa: E402
from wizard.profile import Profile, load_profile  # noqa: E402
from wizard.remote import Remote, q  # noqa: E402
from wizard.secrets import Secrets  # noqa: E402

DONOR = "studio2"
WRITER = "studio1"
RAW_PORT = 4460
CHUNK_ROWS = 50_000
MB = 10**6


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def synced(remote: Remote, profile: Profile, secrets: Secrets, node: str) -> bool:
    st = wsrep_status(remote[node], profile, secrets)
    return st.get("wsrep_local_state_comment") == "Synced" and st.get("wsrep_cluster_status") == "Primary"


def last_committed(remote: Remote, profile: Profile, secrets: Secrets, node: str) -> int:
    return int(wsrep_status(remote[node], profile, secrets).get("wsrep_last_committed") or -1)


def make_data_set(remote: Remote, profile: Profile, secrets: Secrets, rows: int) -> dict[str, float]:
    """``bench.pad``: ``rows`` rows of 1000 random bytes, written on WRITER in chunks, applied on DONOR."""
    w = remote[WRITER]
    sql(w, profile, secrets, "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.pad; "
        "CREATE TABLE bench.pad (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARBINARY(1000) NOT NULL) ENGINE=InnoDB")
    start = time.monotonic()
    left = rows
    while left > 0:
        n = min(CHUNK_ROWS, left)
        sql(w, profile, secrets, f"INSERT INTO bench.pad (pad) SELECT RANDOM_BYTES(1000) FROM bench.seq_1_to_{n}",
            timeout=600)
        left -= n
    written = time.monotonic() - start
    target = last_committed(remote, profile, secrets, WRITER)
    wait_until(f"{DONOR} to apply up to seqno {target}",
               lambda: last_committed(remote, profile, secrets, DONOR) >= target, 600)
    applied = time.monotonic() - start
    ibd = remote[DONOR].run(f"stat -c %s {q(profile.database.data_dir.as_posix())}/bench/pad.ibd",
                            what="size the data set").stdout.strip()
    datadir = remote[DONOR].run(f"du -sb {q(profile.database.data_dir.as_posix())} | cut -f1",
                                what="size the datadir").stdout.strip()
    return {"write_s": written, "applied_s": applied, "ibd_bytes": float(ibd), "datadir_bytes": float(datadir)}


def raw(remote: Remote, profile: Profile, root: str) -> dict[str, float]:
    """The baseline: mariabackup | socat on the donor into socat | mbstream on the Arbiter; seconds and bytes."""
    arb, donor = remote[profile.arbiter.name], remote[DONOR]
    target = f"{root}/raw-{time.time():.0f}"
    arbiter_addr = profile.arbiter.address
    listener = (f"mkdir -p {q(target)}/data && cd {q(target)} && "
                f"{{ setsid sh -c 'socat -u TCP-LISTEN:{RAW_PORT},bind={arbiter_addr},reuseaddr STDOUT "
                f"| mbstream -x -C data; echo $? > rc' </dev/null >log 2>&1 & echo $!; }}")
    start = time.monotonic()
    pid = arb.run(listener, what="start the raw receiver").stdout.split()[-1]
    # socat retries the connect until the listener is up (a few ms).
    donor.run(f"w=$(mktemp -d) && mariabackup --backup --galera-info --stream=xbstream --target-dir=$w "
              f"2>/tmp/bench-raw-mariabackup.log | socat -u STDIN TCP:{arbiter_addr}:{RAW_PORT},retry=50,interval=0.05"
              f"; rc=$?; rm -rf $w; exit $rc", timeout=1800, what="stream a raw backup")
    wait_until("the raw receiver to finish",
               lambda: arb.run(f"test -s {q(target)}/rc", check=False).exit_code == 0, 600, interval=0.05)
    seconds = time.monotonic() - start
    rc = arb.run(f"cat {q(target)}/rc").stdout.strip()
    if rc != "0":
        log = arb.run(f"cat {q(target)}/log", check=False).stdout
        raise RuntimeError(f"raw baseline failed (pid {pid}, exit {rc}): {log}")
    size = int(arb.run(f"du -sb {q(target)}/data | cut -f1").stdout.strip())
    arb.run(f"rm -rf {q(target)}", what="remove the raw copy")
    return {"seconds": seconds, "bytes": float(size)}


def product(remote: Remote, profile: Profile, secrets: Secrets) -> dict[str, float]:
    """``take()`` from the donor; seconds and bytes, plus when the first byte arrived and the stream ended."""
    marks: dict[str, float] = {}

    def on_progress(p: Progress) -> None:
        if p.bytes and "first_byte_s" not in marks:
            marks["first_byte_s"] = p.seconds
        if p.state in ("finishing", "complete") and "stream_end_s" not in marks:
            marks["stream_end_s"] = p.seconds

    start = time.monotonic()
    res = take(profile, secrets, remote, donor=DONOR, on_progress=on_progress)
    seconds = time.monotonic() - start
    m = res.manifest
    arb = remote[profile.arbiter.name]
    # take's own timeline (seconds from the call) and the receiver's (seconds from its start, its clock)
    tl = res.timeline
    rt = m.get("timings") or {}
    from_stream = (m.get("sha256_from") or {}).get("stream", 0)
    out = {"seconds": seconds, "bytes": float(m["size"]), "stream_bytes": float(m["stream_bytes"]),
           "to_manifest_s": tl.get("donor_checked", 0.0) + res.seconds,  # take's seconds count from there
           "synced_after_s": float(res.synced_after_s or 0.0),
           "receiver_s": float(m["finished_epoch"]) - float(m["started_epoch"]),
           "donor_checked_s": tl.get("donor_checked", 0.0), "garbd_started_s": tl.get("garbd_started", 0.0),
           "complete_seen_s": tl.get("complete_seen", 0.0), "returned_s": tl.get("returned", 0.0),
           "r_connected_s": rt.get("connected", 0.0), "r_stream_end_s": rt.get("stream_end", 0.0),
           "r_end_marker_s": rt.get("end_marker", 0.0), "r_hashed_s": rt.get("hashed", 0.0),
           "sha256_from_stream": float(from_stream), **marks}
    # untimed: the manifest's sha256 (computed while the stream passed, or from disk) must match the copy
    bad = arb.run(["python3", "-c", CHECK, res.path], timeout=600).stdout.strip()
    if bad != "0":
        raise RuntimeError(f"the manifest of {res.id} does not match its copy: {bad}")
    arb.run(f"rm -rf {q(res.path)}", what="remove the backup")
    return out


CHECK = r"""
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))["files"]
bad = []
for rel, f in m.items():
    h = hashlib.sha256()
    with open(os.path.join(d, "data", rel), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != f["sha256"]:
        bad.append(rel)
print(len(bad), *bad[:5])
"""


HASH = r"""
import hashlib, os, sys, time
t = time.monotonic(); n = 0
for root, _d, names in os.walk(sys.argv[1]):
    for name in names:
        h = hashlib.sha256()
        with open(os.path.join(root, name), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk); n += len(chunk)
print(n, time.monotonic() - t)
"""


def hash_cost(remote: Remote, profile: Profile, root: str) -> dict[str, float]:
    """What the receiver's sha256 pass costs on the Arbiter over a copy of the data set (page cache warm)."""
    arb, donor = remote[profile.arbiter.name], remote[DONOR]
    target = f"{root}/hash-probe"
    pid = arb.run(f"mkdir -p {q(target)}/data && cd {q(target)} && {{ setsid sh -c 'socat -u TCP-LISTEN:"
                  f"{RAW_PORT},bind={profile.arbiter.address},reuseaddr STDOUT | mbstream -x -C data; echo $? > rc' "
                  "</dev/null >log 2>&1 & echo $!; }").stdout.split()[-1]
    donor.run(f"w=$(mktemp -d) && mariabackup --backup --stream=xbstream --target-dir=$w 2>/dev/null | socat -u "
              f"STDIN TCP:{profile.arbiter.address}:{RAW_PORT},retry=50,interval=0.05; rc=$?; rm -rf $w; exit $rc",
              timeout=1800)
    wait_until(f"the probe copy (pid {pid})", lambda: arb.run(f"test -s {q(target)}/rc", check=False).exit_code == 0,
               600)
    n, s = arb.run(["python3", "-c", HASH, f"{target}/data"], timeout=600).stdout.split()
    arb.run(f"rm -rf {q(target)}")
    return {"bytes": float(n), "seconds": float(s)}


def fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_100_000, help="rows of 1000 random bytes (1.1M: ~1.2 GB)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-backup.md")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args()
    # Each data node holds the table and its binary log (about 2 x 1000 bytes a row), the Arbiter one copy at a time.
    need = args.rows * 1000 * 5
    free = shutil.disk_usage(lab.LAB_DIR if lab.LAB_DIR.exists() else "/").free
    if free < need:
        print(f"bench/backup.py: {args.rows:,} rows need about {need / 1e9:.0f} GB free under {lab.LAB_DIR}, "
              f"{free / 1e9:.0f} GB are: free some disk or pass a smaller --rows", file=sys.stderr)
        return 2
    quiet: Callable[[str], None] = lambda _m: None  # noqa: E731
    t0 = time.monotonic()
    lab.down(progress=quiet)
    lab.up(progress=quiet)
    profile = load_profile(REPO / "profiles" / "lab.yaml")
    secrets = Secrets.resolve_for(profile)
    root = str(profile.backups.root)
    raws: list[dict[str, float]] = []
    takes: list[dict[str, float]] = []
    extra: dict[str, Any] = {}
    try:
        replay(profile, secrets, skip_checks=True)
        print(f"cluster up after {time.monotonic() - t0:.1f} s", flush=True)
        with Remote(profile) as remote:
            data = make_data_set(remote, profile, secrets, args.rows)
            extra["data"] = data
            print(f"data set: {data['ibd_bytes'] / MB:.0f} MB table, datadir {data['datadir_bytes'] / MB:.0f} MB; "
                  f"written in {data['write_s']:.1f} s, on {DONOR} after {data['applied_s']:.1f} s", flush=True)
            remote[profile.arbiter.name].run(f"mkdir -p {q(root)}")
            for i in range(args.rounds):
                for name, fn, sink in (("raw", lambda: raw(remote, profile, root), raws),
                                       ("take", lambda: product(remote, profile, secrets), takes)):
                    wait_until(f"{DONOR} Synced", lambda: synced(remote, profile, secrets, DONOR), 120)
                    load = os.getloadavg()[0]
                    r = fn()
                    r["load1"] = load
                    sink.append(r)
                    print(f"round {i + 1}: {name:4} {r['seconds']:6.2f} s  {r['bytes'] / MB:7.0f} MB  "
                          f"{r['bytes'] / MB / r['seconds']:6.1f} MB/s  "
                          + json.dumps({k: round(v, 2) for k, v in r.items() if k not in ('seconds', 'bytes')}),
                          flush=True)
            extra["hash"] = hash_cost(remote, profile, root)
            print(f"sha256 of the copy on the Arbiter: {extra['hash']['bytes'] / MB:.0f} MB in "
                  f"{extra['hash']['seconds']:.2f} s", flush=True)
            sql(remote[WRITER], profile, secrets, "DROP DATABASE bench", timeout=300)
    finally:
        lab.down(progress=quiet)
        lab.up(progress=quiet)
    wall = time.monotonic() - t0
    rs = statistics.median(r["seconds"] for r in raws)
    ts = statistics.median(t["seconds"] for t in takes)
    size = statistics.median(t["bytes"] for t in takes)
    ratio = rs / ts
    med = {k: statistics.median(t.get(k, 0.0) for t in takes)
           for k in ("donor_checked_s", "garbd_started_s", "first_byte_s", "stream_end_s", "to_manifest_s",
                     "complete_seen_s", "returned_s", "synced_after_s", "r_connected_s", "r_stream_end_s",
                     "r_end_marker_s", "r_hashed_s", "receiver_s", "sha256_from_stream")}
    loads = [r["load1"] for pair in zip(raws, takes, strict=False) for r in pair]
    report = (
        "# Backup benchmark\n\n"
        "`bench/backup.py`: `backup take` against the raw floor (`mariabackup --backup --stream=xbstream | socat`\n"
        "on the donor into `socat | mbstream -x` on the Arbiter, same lab link), alternating, one run, "
        f"{args.rows:,} rows of 1000 random bytes\n"
        f"({extra['data']['ibd_bytes'] / MB:.0f} MB table, {size / MB:.0f} MB copied).\n\n"
        "| | rounds | median | MB/s | all (s) |\n|---|---|---|---|---|\n"
        f"| raw | {len(raws)} | {rs:.2f}s | {size / MB / rs:.1f} | {fmt([r['seconds'] for r in raws])} |\n"
        f"| take | {len(takes)} | {ts:.2f}s | {size / MB / ts:.1f} | {fmt([t['seconds'] for t in takes])} |\n\n"
        f"**throughput ratio take / raw = {ratio:.3f}** (goal >= 0.9)\n\n"
        "take, medians from the call's start: donor checked (and the receiver uploaded) "
        f"{med['donor_checked_s']:.2f} s, "
        f"receiver listening and garbd started {med['garbd_started_s']:.2f} s, first byte seen "
        f"{med['first_byte_s']:.1f} s, stream end seen {med['stream_end_s']:.1f} s, complete seen "
        f"{med['complete_seen_s']:.2f} s, returned {med['returned_s']:.2f} s (donor Synced "
        f"{med['synced_after_s']:.2f} s after the manifest; the follow-up call returns at each change of the "
        "receiver's state, else every 1 s).\n"
        f"The receiver, medians from its own start: donor connected {med['r_connected_s']:.2f} s (garbd's join and "
        f"the donor's start), stream ended {med['r_stream_end_s']:.2f} s, end marker {med['r_end_marker_s']:.2f} s, "
        f"files hashed {med['r_hashed_s']:.2f} s, manifest {med['receiver_s']:.2f} s; files whose sha256 came from "
        f"the stream as it passed: {med['sha256_from_stream']:.0f} (the rest read back from disk).\n"
        f"1-minute load average before each run (raw, take alternating): {fmt(loads)}.\n"
        f"sha256 of a copy on the Arbiter (the receiver's manifest pass): {extra['hash']['bytes'] / MB:.0f} MB in "
        f"{extra['hash']['seconds']:.2f} s.\n"
        f"Whole run (lab, replay, data set, rounds, clean-up): {wall:.0f} s.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    if args.json:
        args.json.write_text(json.dumps({"raw": raws, "take": takes, **extra, "wall_s": wall}, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
