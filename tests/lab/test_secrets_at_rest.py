"""No secret in the clear at rest (issue 10), on a cluster the product formed on the lab.

* Every file the product generates on the nodes has the owner, group and mode it was rendered with, and a
  file that holds a secret is 0640 root:mysql (root:nogroup on the Arbiter) or 0600; beyond the rendered
  files, every file under the product's own directories (run_dir, the backups of replaced files,
  /etc/studio-cluster) that holds a secret value is not readable by others.
* No secret value used appears in galera.cache, the binary logs (when enabled), the run log of the replay
  that formed the cluster (and every run log under runs/), a saved profile, the rendered non-secret files,
  Redis (every key under the product's prefix, every value), or a command line on the nodes (ps).

The secret values are handed to grep on stdin (``grep -F -f -``), never in a command line.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from wizard.coordinator import redis_client
from wizard.nodesql import sql
from wizard.pipeline import new_runlog, replay
from wizard.profile import Profile, save_profile
from wizard.remote import Remote, RunLog
from wizard.render import render
from wizard.secrets import Secrets

REPO = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ["/var/backups/studio-cluster", "/etc/studio-cluster"]


def secret_values(profile: Profile, secrets: Secrets) -> list[str]:
    values = [secrets.sst_password, secrets.admin_password, secrets.redis_password, secrets.sentinel_password,
              secrets.dns_api_key, *secrets.key_passphrases.values()]
    found = [v for v in values if v]
    assert secrets.sst_password in found and secrets.redis_password in found, "the lab uses these secrets"
    return found


@pytest.fixture(scope="module")
def formed(profile: Profile, secrets: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunLog]:
    runlog = new_runlog(tmp_path_factory.mktemp("runs"))
    result = replay(profile, secrets, runlog=runlog)  # forms the cluster, or finds it formed
    assert result.status is not None and result.status.verdict == "healthy", result.status
    yield runlog


def grep_remote(remote: Remote, node: str, values: list[str], roots: str) -> list[str]:
    """The files under `roots` (shell words: quoted paths, globs; missing ones ignored) that hold any of
    `values` (given on stdin, kept in a 0600 file for the search)."""
    script = (f"umask 077; p=$(mktemp); cat > \"$p\"; find {roots} -type f -print0 2>/dev/null | "
              "xargs -0 -r grep -a -l -F -f \"$p\"; rm -f \"$p\"; true")
    return remote[node].run(script, stdin="\n".join(values) + "\n", timeout=60).stdout.splitlines()


def redis_text(client: redis.Redis, key: bytes) -> str:
    """Every value a key holds, as text to search."""
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    readers = {"string": client.get, "hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
               "set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
               "stream": client.xrange}
    return repr(readers[kind](key)) if kind in readers else ""


def test_generated_files_have_their_owner_and_mode(formed: RunLog, profile: Profile, secrets: Secrets,
                                                   remote: Remote) -> None:
    values = secret_values(profile, secrets)
    checked = 0
    for node, files in render(profile, secrets).items():
        if node == "dns":
            continue
        for f in files:
            got = remote[node].run(["stat", "-c", "%U:%G %a", str(f.path)], check=False).stdout.strip()
            if not got:  # a file apply writes only where its product is installed (Crafter's)
                continue
            checked += 1
            assert got == f"{f.owner}:{f.group} {f.mode:o}", f"{node}:{f.path} is {got}"
            if any(v in f.content for v in values):  # (a private key is secret too, without a value of ours)
                assert f.secret, f"{node}:{f.path} holds a secret value but is not marked secret"
            if f.secret:
                assert (f.mode, f.owner) in ((0o640, "root"), (0o600, "root")), f"{node}:{f.path} {got}"
                assert f.mode == 0o600 or f.group in ("mysql", "nogroup"), f"{node}:{f.path} {got}"
    assert checked >= 4, checked
    for node in (n.name for n in profile.nodes):
        dirs = [str(profile.services.run_dir), *PRODUCT_DIRS]
        listing = remote[node].run(f"find {' '.join(map(shlex.quote, dirs))} -type f -printf '%m %u:%g %p\\n' "
                                   "2>/dev/null; true").stdout.splitlines()
        holders = set(grep_remote(remote, node, values, " ".join(map(shlex.quote, dirs))))
        for line in listing:
            mode, owner, path = line.split(" ", 2)
            assert int(mode, 8) & 0o002 == 0, f"{node}:{path} is world-writable ({mode} {owner})"
            if path in holders:
                assert int(mode, 8) & 0o007 == 0, f"{node}:{path} holds a secret and is {mode} {owner}"


def test_no_secret_in_the_clear(formed: RunLog, profile: Profile, secrets: Secrets, remote: Remote,
                                tmp_path: Path) -> None:
    values = secret_values(profile, secrets)
    found: list[str] = []
    datadir = shlex.quote(str(profile.database.data_dir))
    config = str(profile.database.config_file)
    assert grep_remote(remote, "studio1", values, shlex.quote(config)) == [config], "the search finds a secret"
    for node in (n.name for n in profile.studio_nodes):
        sql(remote[node], profile, secrets, "FLUSH BINARY LOGS", check=False)
        rows = sql(remote[node], profile, secrets, "SELECT @@log_bin, IFNULL(@@log_bin_basename, '')")
        binlogs = shlex.quote(rows[0][1]) + ".[0-9]*" if rows and rows[0][0] == "1" and rows[0][1] else ""
        cache = remote[node].run(["stat", "-c", "%s", f"{profile.database.data_dir}/galera.cache"]).stdout.strip()
        assert int(cache) > 0
        found += [f"{node}:{p}" for p in grep_remote(remote, node, values, f"{datadir}/galera.cache {binlogs}")]
        hashed = grep_remote(remote, node, ["IDENTIFIED BY PASSWORD"], f"{datadir}/galera.cache")
        print(f"{node}: galera.cache ({cache} bytes, {'with' if hashed else 'without'} the SST user's CREATE USER "
              f"by hash) searched; binary logs: {binlogs or 'off'}")
    for node in (n.name for n in profile.nodes):  # command lines of every process on the node
        cmdlines = remote[node].run("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done",
                                    timeout=30).stdout
        found += [f"{node}: a command line" for v in values if v in cmdlines]

    assert formed.path is not None and formed.path.stat().st_size > 0
    logs = [formed.path, *sorted((REPO / "runs").glob("*.jsonl"))]
    found += [str(p) for p in logs if any(v in p.read_text(errors="replace") for v in values)]

    saved = save_profile(profile, tmp_path / "saved.yaml").read_text()
    found += ["the saved profile" for v in values if v in saved]

    for node, files in render(profile, secrets).items():
        found += [f"rendered {node}:{f.path}" for f in files if not f.secret and any(v in f.content for v in values)]

    client = redis_client(profile, secrets)
    try:
        keys = 0
        for key in client.scan_iter(match=f"{profile.redis.key_prefix}:*", count=500):
            keys += 1
            raw = client.dump(key)
            text, dump = redis_text(client, key), raw if isinstance(raw, bytes) else b""
            for v in values:
                if v in text or v.encode() in dump or base64.b64encode(v.encode()).decode() in text:
                    found.append(f"Redis key {key!r}")
        assert keys > 0, "the run left its story in Redis"
    except redis.RedisError as exc:
        pytest.fail(f"cannot read Redis: {exc}")
    finally:
        client.close()
    assert found == [], f"a secret value is in the clear in: {found}"
