"""Rendering the lab profile: keys per node, secrets only where they belong, redacted diffs, determinism."""

from __future__ import annotations

import configparser
import os
import shlex
import stat
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from wizard.profile import Profile, RedisSettings, load_profile
from wizard.render import (
    DNS_NODE,
    RenderedFile,
    RenderError,
    authoring_rdata,
    authoring_record,
    cluster_address,
    placeholder,
    render,
    render_to_dir,
    unified_diff,
)
from wizard.secrets import Secrets

LAB = Path(__file__).resolve().parents[2] / "profiles" / "lab.yaml"
SST = "Sst-pass#w0rd;42"  # '#' and ';' would start a comment in an unquoted option-file value
SST_SCRIPT = PurePosixPath("/usr/bin/wsrep_sst_studio_backup")
CNF = PurePosixPath("/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf")
OVERRIDE = PurePosixPath(
    "/opt/crafter/bin/apache-tomcat/shared/classes/crafter/studio/extension/studio-config-override.yaml"
)
SETENV = PurePosixPath("/opt/crafter/bin/crafter-setenv-cluster.sh")


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(LAB, check_files=False)


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    return Secrets(sst_password=SST, admin_password=None, redis_password="redis-secret-value")


@pytest.fixture(scope="module")
def rendered(profile: Profile, secrets: Secrets) -> dict[str, list[RenderedFile]]:
    return render(profile, secrets)


def by_path(files: list[RenderedFile]) -> dict[PurePosixPath, RenderedFile]:
    return {f.path: f for f in files}


def parse_cnf(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(allow_no_value=True, interpolation=None, inline_comment_prefixes=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return cp


def unquote(value: str | None) -> str:
    assert value is not None
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = data
    return out


def test_nodes_and_files(rendered: dict[str, list[RenderedFile]]) -> None:
    assert list(rendered) == ["studio1", "studio2", "arbiter", DNS_NODE]
    for name in ("studio1", "studio2"):
        assert set(by_path(rendered[name])) == {CNF, SETENV, OVERRIDE, SST_SCRIPT}
    assert [f.path for f in rendered["arbiter"]] == [PurePosixPath("/etc/default/garb")]
    assert [f.path for f in rendered[DNS_NODE]] == [PurePosixPath("/zones/lab.test/studio.lab.test.lua-record")]
    for files in rendered.values():
        for f in files:
            assert f.path.is_absolute()
            assert f.content.endswith("\n")


@pytest.mark.parametrize(("node", "address"), [("studio1", "198.18.0.11"), ("studio2", "198.18.0.12")])
def test_galera_config(rendered: dict[str, list[RenderedFile]], node: str, address: str) -> None:
    f = by_path(rendered[node])[CNF]
    assert (f.mode, f.owner, f.group, f.secret, f.restart) == (0o640, "root", "mysql", True, ("mariadb",))
    cp = parse_cnf(f.content)
    mysqld, galera = cp["mysqld"], cp["galera"]
    assert mysqld["bind-address"] == address
    assert mysqld["port"] == "3306"
    assert mysqld["datadir"] == "/var/lib/mysql"
    assert mysqld["binlog_format"] == "ROW"
    assert mysqld["default_storage_engine"] == "InnoDB"
    assert mysqld["innodb_autoinc_lock_mode"] == "2"
    assert galera["wsrep_on"] == "ON"
    assert galera["wsrep_provider"] == "/usr/lib/galera/libgalera_smm.so"
    assert unquote(galera["wsrep_cluster_name"]) == "studio-lab"
    gcomm = unquote(galera["wsrep_cluster_address"])
    assert gcomm.startswith("gcomm://")
    assert gcomm.removeprefix("gcomm://").split(",") == ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    assert galera["wsrep_node_name"] == node
    assert unquote(galera["wsrep_node_address"]) == address
    assert galera["wsrep_sst_method"] == "mariabackup"
    assert unquote(galera["wsrep_sst_auth"]) == f"sst:{SST}"
    options = dict(o.split("=", 1) for o in unquote(galera["wsrep_provider_options"]).split(";"))
    assert options["gmcast.listen_addr"] == f"tcp://{address}:4567"
    assert options["ist.recv_addr"] == f"{address}:4568"
    assert unquote(galera["wsrep_sst_receive_address"]) == f"{address}:4444"
    assert int(galera["wsrep_slave_threads"]) >= 1
    assert cp["sst"]["sst-syslog"] == "-1"


def test_cluster_address_with_non_default_port(profile: Profile) -> None:
    p = profile.model_copy(deep=True)
    p.database.galera_port = 5567
    assert cluster_address(p) == "gcomm://198.18.0.11:5567,198.18.0.12:5567,198.18.0.13:5567"
    garb = render(p, None)["arbiter"][0].content
    assert "GALERA_NODES=198.18.0.11:5567,198.18.0.12:5567\n" in garb


def test_studio_settings(rendered: dict[str, list[RenderedFile]]) -> None:
    files = by_path(rendered["studio1"])
    override = files[OVERRIDE]
    assert (override.restart, override.secret) == ((), False)
    data = flatten(yaml.safe_load(override.content))
    assert data == {
        "studio.clustering.sync.urlFormat": "ssh://{username}@{localAddress}{absolutePath}",
        "studio.clustering.heartbeatStale.timeLimit": 5,
        "studio.clustering.inactivity.timeLimit": 5,
        "studio.clustering.node.registration.localAddress": "${env:CLUSTER_NODE_ADDRESS}",
        "studio.clustering.node.registration.authenticationType": "none",
        "studio.clustering.node.registration.username": "crafter",
    }

    setenv = files[SETENV].content
    env = dict(
        line.removeprefix("export ").split("=", 1) for line in setenv.splitlines() if line.startswith("export ")
    )
    assert {k: shlex.split(v)[0] for k, v in env.items()} == {
        "SPRING_PROFILES_ACTIVE": "crafter.studio.externalDb",
        "MARIADB_HOST": "198.18.0.11",
        "MARIADB_PORT": "3306",
        "CLUSTER_NODE_ADDRESS": "198.18.0.11",
    }


def test_studio_files_hold_no_redis_settings(profile: Profile) -> None:
    """Studio does not read the coordination store: its settings stay out of Studio's files (URL or Sentinel)."""
    p = profile.model_copy(deep=True)
    for redis in (p.redis, RedisSettings(url="redis://198.18.0.2:6379/0", password="env:MY_REDIS_PW")):
        p.redis = redis
        for f in render(p, None)["studio2"]:
            if f.path in (OVERRIDE, SETENV):
                assert "redis" not in f.content.lower() and "sentinel" not in f.content.lower(), f.path


def test_garb_config(rendered: dict[str, list[RenderedFile]]) -> None:
    (f,) = rendered["arbiter"]
    assert (f.mode, f.owner, f.group, f.secret, f.restart) == (0o644, "root", "root", False, ("garbd",))
    # Parse it the way garb-systemd does: by sourcing it in a shell.
    out = subprocess.run(
        ["bash", "-c", 'set -u; . /dev/stdin; printf "%s\\n" "$GALERA_NODES" "$GALERA_GROUP" "$GALERA_OPTIONS" '
         '"$LOG_FILE" "$WORK_DIR"'],
        input=f.content, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    nodes, group, options, log_file, work_dir = out
    assert nodes.split(",") == ["198.18.0.11:4567", "198.18.0.12:4567"]
    assert group == "studio-lab"
    assert "gmcast.listen_addr=tcp://198.18.0.13:4567" in options.split(";")
    assert log_file.startswith("/") and work_dir.startswith("/")


def test_authoring_record(profile: Profile, rendered: dict[str, list[RenderedFile]]) -> None:
    record = authoring_record(profile)
    assert record == (
        "studio 1 IN LUA A \"ifurlup('http://studio.lab.test:9200/', {{'198.18.0.11'}, {'198.18.0.12'}}, "
        "{interval='1', timeout='1'})\""
    )
    (f,) = rendered[DNS_NODE]
    assert record + "\n" in f.content
    other = profile.model_copy(deep=True)
    other.preferred_primary = "studio2"
    assert "{{'198.18.0.12'}, {'198.18.0.11'}}" in authoring_record(other)


def test_authoring_record_names(profile: Profile) -> None:
    assert authoring_record(profile) == f"studio 1 IN {authoring_rdata(profile)}"
    assert authoring_rdata(profile).startswith('LUA A "ifurlup(')
    p = profile.model_copy(deep=True)
    p.dns.zone = "studio.lab.test"
    assert authoring_record(p).startswith("@ 1 IN LUA A ")
    p.dns.zone = "example.org"
    assert authoring_record(p).startswith("studio.lab.test. 1 IN LUA A ")
    p.dns.zone = None  # default: the parent of the name
    assert authoring_record(p).startswith("studio 1 IN LUA A ")


def test_authoring_record_needs_ips(profile: Profile) -> None:
    p = profile.model_copy(deep=True)
    p.nodes[1].address = "studio2.lab.test"
    with pytest.raises(RenderError, match="studio2"):
        authoring_record(p)


def test_only_secret_files_hold_the_password(rendered: dict[str, list[RenderedFile]]) -> None:
    secret_files = [f for files in rendered.values() for f in files if f.secret]
    assert len(secret_files) == 2
    for files in rendered.values():
        for f in files:
            if f.secret:
                assert SST in f.content
                assert (f.mode, f.group) == (0o640, "mysql")
                assert not f.mode & stat.S_IROTH
            else:
                assert SST not in f.content
                assert "redis-secret-value" not in f.content


def test_placeholder_without_secrets(profile: Profile) -> None:
    files = render(profile, None)
    cnf = by_path(files["studio1"])[CNF]
    assert unquote(parse_cnf(cnf.content)["galera"]["wsrep_sst_auth"]) == f"sst:{placeholder('sst_password')}"
    assert placeholder("sst_password") == "<sst_password>"
    assert SST not in "".join(f.content for fs in files.values() for f in fs)


def test_no_sst_password(profile: Profile) -> None:
    cnf = by_path(render(profile, Secrets(None, None, None))["studio1"])[CNF]
    assert "wsrep_sst_auth" not in parse_cnf(cnf.content)["galera"]
    assert cnf.secret is False


def test_unsafe_password_is_refused(profile: Profile) -> None:
    with pytest.raises(RenderError, match="sst_password"):
        render(profile, Secrets('pa"ss word', None, None))


def test_diff_redacts_password(rendered: dict[str, list[RenderedFile]]) -> None:
    cnf = by_path(rendered["studio1"])[CNF]
    new_file = unified_diff(cnf.path, None, cnf.content)
    assert new_file.startswith("--- /dev/null\n+++ b/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf\n")
    assert SST not in new_file
    assert '+wsrep_sst_auth = "sst:***"' in new_file
    # An old password on the node that nobody registered for redaction is hidden as well.
    old = cnf.content.replace(SST, "old-unknown-pw").replace("wsrep_slave_threads = 2", "wsrep_slave_threads = 1")
    changed = unified_diff(cnf.path, old, cnf.content)
    assert "old-unknown-pw" not in changed
    assert SST not in changed
    assert "-wsrep_slave_threads = 1" in changed and "+wsrep_slave_threads = 2" in changed
    assert unified_diff(cnf.path, cnf.content, cnf.content) == ""


def test_rendering_is_deterministic(profile: Profile, secrets: Secrets) -> None:
    first = render(profile, secrets)
    again = render(load_profile(LAB, check_files=False), Secrets(SST, None, "redis-secret-value"))
    assert first == again
    assert [(f.path, f.content.encode()) for fs in first.values() for f in fs] == [
        (f.path, f.content.encode()) for fs in again.values() for f in fs
    ]


def test_render_to_dir(profile: Profile, secrets: Secrets, tmp_path: Path) -> None:
    written = render_to_dir(profile, secrets, tmp_path)
    cnf = tmp_path / "studio2" / "etc/mysql/mariadb.conf.d/99-studio-cluster.cnf"
    assert cnf in written
    assert stat.S_IMODE(os.stat(cnf).st_mode) == 0o640
    assert (tmp_path / "arbiter/etc/default/garb").read_text() == render(profile, secrets)["arbiter"][0].content
    assert (tmp_path / "dns/zones/lab.test/studio.lab.test.lua-record").is_file()
    assert len(written) == sum(len(v) for v in render(profile, secrets).values())


@pytest.mark.skipif(not Path("/usr/sbin/mariadbd").exists(), reason="mariadbd not installed")
def test_mariadbd_accepts_the_config(rendered: dict[str, list[RenderedFile]], tmp_path: Path) -> None:
    cnf = tmp_path / "galera.cnf"
    cnf.write_text(by_path(rendered["studio1"])[CNF].content)
    out = subprocess.run(
        ["/usr/sbin/mariadbd", f"--defaults-file={cnf}", "--verbose", "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    pairs = [line.split(None, 1) for line in out.stdout.splitlines() if line.startswith("wsrep-")]
    values = {p[0]: p[1].strip() for p in pairs if len(p) == 2}
    assert values["wsrep-sst-auth"] == f"sst:{SST}"
    assert values["wsrep-cluster-address"] == "gcomm://198.18.0.11,198.18.0.12,198.18.0.13"
