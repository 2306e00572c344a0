"""TLS on the lab (issue 10): the cluster forms with TLS, a node with a certificate of another CA cannot join,
and a capture on the Galera port holds no readable SQL text of a row written meanwhile.

profiles/lab.yaml stays without TLS; these tests use a copy with ``tls.enabled`` and a generated CA kept in a
temporary store.  The module forms its own cluster on fresh hosts and leaves fresh hosts behind (a TLS cluster
would refuse the plain lab profile's nodes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wizard import lab
from wizard.nodesql import sql, wsrep_status
from wizard.pipeline import replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets
from wizard.tls.options import paths


def fresh_lab() -> None:
    lab.down(progress=lambda _m: None)
    lab.up(progress=lambda _m: None)


def tls_profile(profile: Profile, store: Path) -> Profile:
    return profile.model_copy(update={"tls": profile.tls.model_copy(update={"enabled": True, "store": store})})


@pytest.fixture(scope="module")
def tls_formed(profile: Profile, secrets: Secrets,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    p = tls_profile(profile, tmp_path_factory.mktemp("tls-store"))
    fresh_lab()
    start = time.monotonic()
    result = replay(p, secrets, skip_checks=True)
    yield {"profile": p, "result": result, "seconds": time.monotonic() - start}
    fresh_lab()


@pytest.fixture
def tls_remote(tls_formed: dict[str, Any]) -> Iterator[Remote]:
    r = Remote(tls_formed["profile"])
    yield r
    r.close()


def test_the_cluster_forms_with_tls(tls_formed: dict[str, Any], secrets: Secrets, tls_remote: Remote) -> None:
    p: Profile = tls_formed["profile"]
    result = tls_formed["result"]
    assert result.status is not None and result.status.verdict == "healthy", result.status
    for node in ("studio1", "studio2"):
        w = wsrep_status(tls_remote[node], p, secrets)
        assert (w["wsrep_cluster_size"], w["wsrep_cluster_status"], w["wsrep_local_state_comment"]) == \
            ("3", "Primary", "Synced"), w
        opts = sql(tls_remote[node], p, secrets, "SELECT @@wsrep_provider_options, @@have_ssl")[0]
        assert "socket.ssl = YES" in opts[0] and opts[1] == "YES", opts
    f = paths(p)
    for node, group in (("studio1", "mysql"), ("studio2", "mysql"), ("arbiter", "nogroup")):
        stat = tls_remote[node].run(["stat", "-c", "%n %U %G %a", str(f["key"]), str(f["cert"]), str(f["ca"])])
        assert stat.stdout.split("\n")[:3] == [f"{f['key']} root {group} 640", f"{f['cert']} root root 644",
                                               f"{f['ca']} root root 644"], node
    # studio2 joined a fresh cluster by mariabackup SST: over socat with TLS, the CA verified.
    joiner = lab.host_exec("studio2", ["cat", "/var/log/mysql/mariadbd.out"], check=False).stdout
    assert "with cert=" in joiner and "ca=" in joiner, joiner[-3000:]
    print(f"TLS cluster formed by replay in {tls_formed['seconds']:.1f} s")
