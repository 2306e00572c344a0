"""TLS in the manifests: each Galera member mounts its own Secret (by name) where the SSH path's options name the
files; `k8s render --out` makes the Secrets' files beside --out (0700, never in it) with the pods' DNS names as
subject alternative names, or checks and names the operator's own; the TLS-off render carries none of it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.unit.k8s_example import example_data, example_file, example_profile
from wizard.cli import main
from wizard.k8s import tls as k8s_tls
from wizard.k8s.manifests import manifests
from wizard.k8s.topology import K8sError, pod_profile
from wizard.profile import Profile, validate_profile
from wizard.tls import certs, options

PODS = {"galera-0": "galera-0.galera.studio-cluster.svc.cluster.local",
        "galera-1": "galera-1.galera.studio-cluster.svc.cluster.local",
        "garbd": "garbd.galera.studio-cluster.svc.cluster.local"}


@pytest.fixture(scope="module")
def profile() -> Profile:
    return example_profile(tls=True)


@pytest.fixture(scope="module")
def objs(profile: Profile) -> list[dict[str, Any]]:
    return manifests(profile)


def by(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_each_data_pod_mounts_its_own_secret_where_the_options_name_the_files(
        profile: Profile, objs: list[dict[str, Any]]) -> None:
    sts = by(objs, "StatefulSet", "galera")
    spec = sts["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert volume["projected"]["defaultMode"] == 0o440
    p = options.paths(profile)
    for source, pod in zip(volume["projected"]["sources"], ["galera-0", "galera-1"], strict=True):
        assert source["secret"]["name"] == f"studio-cluster-tls-{pod}"
        assert {i["key"]: i["path"] for i in source["secret"]["items"]} == {
            "ca.crt": f"{pod}/{p['ca'].name}", "tls.crt": f"{pod}/{p['cert'].name}",
            "tls.key": f"{pod}/{p['key'].name}"}
    # mysql reads them as group (0440, the pod's fsGroup); the agent's recovery and mariadbd (with its SST
    # scripts) see only their own pod's directory, at tls.remote_dir, read-only
    assert spec["securityContext"] == {"fsGroup": k8s_tls.MYSQL_GID, "fsGroupChangePolicy": "OnRootMismatch"}
    mounted = {c["name"]: c for c in containers(sts) if any(m["name"] == "tls" for m in c["volumeMounts"])}
    assert sorted(mounted) == ["agent", "mariadb"]
    for c in mounted.values():
        mount = next(m for m in c["volumeMounts"] if m["name"] == "tls")
        assert mount == {"name": "tls", "mountPath": str(p["ca"].parent), "subPathExpr": "$(POD_NAME)",
                         "readOnly": True}
        assert any(e["name"] == "POD_NAME" and e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
                   for e in c["env"])
    data = by(objs, "ConfigMap", "galera-config")["data"]
    for pod in ("galera-0", "galera-1"):
        for path in p.values():
            assert str(path) in data[f"{pod}.cnf"]


def test_garbd_mounts_its_own_secret_0400(profile: Profile, objs: list[dict[str, Any]]) -> None:
    dep = by(objs, "Deployment", "garbd")
    spec = dep["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "studio-cluster-tls-garbd"
    assert volume["secret"]["defaultMode"] == 0o400
    assert [i["path"] for i in volume["secret"]["items"]] == ["ca.pem", "cert.pem", "key.pem"]
    garbd = containers(dep)[0]
    assert {"name": "tls", "mountPath": "/etc/studio-cluster/tls", "readOnly": True} in garbd["volumeMounts"]
    assert options.galera_options_suffix(profile) in " ".join(garbd["command"])


def test_no_tls_material_is_in_the_manifests(objs: list[dict[str, Any]]) -> None:
    text = json.dumps(objs)
    assert "BEGIN" not in text and "PRIVATE KEY" not in text
    assert not [o for o in objs if o["kind"] == "Secret"]


def test_the_scheduled_backup_joins_with_the_arbiters_secret() -> None:
    data = example_data(tls=True)
    data["backups"] = {**data.get("backups", {}), "schedule": "02:30"}
    objs = manifests(validate_profile(data, check_files=False))
    pod = by(objs, "CronJob", "galera-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]["secretName"] == "studio-cluster-tls-garbd"
    assert {"name": "tls", "mountPath": "/etc/studio-cluster/tls", "readOnly": True} in pod["containers"][0][
        "volumeMounts"]


def test_tls_off_renders_no_tls_mount_secret_or_fs_group() -> None:
    objs = manifests(example_profile(tls=False))
    text = json.dumps(objs)
    assert "tls" not in [v["name"] for o in objs if o["kind"] in ("StatefulSet", "Deployment")
                         for v in o["spec"]["template"]["spec"]["volumes"]]
    assert "fsGroup" not in text and "-tls-" not in text and "socket.ssl" not in text
    assert k8s_tls.write_material(example_profile(tls=False), Path("/nonexistent/m")) == []


def _sans(pem: bytes) -> set[str]:
    cert = certs.load_cert(pem, "test")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)}


def test_generated_material_names_the_pods_and_stays_out_of_the_applied_dir(tmp_path: Path) -> None:
    data = example_data(tls=True)
    data["tls"]["store"] = str(tmp_path / "hosts-store")
    profile = validate_profile(data, check_files=False)
    out = tmp_path / "manifests"
    commands = k8s_tls.write_material(profile, out)
    where = tmp_path / "manifests-tls"
    assert stat.S_IMODE(where.stat().st_mode) == 0o700 and not out.exists()
    assert commands == [
        f"kubectl -n studio-cluster create secret generic studio-cluster-tls-{m} --from-file=ca.crt={where}/{m}/ca.crt "
        f"--from-file=tls.crt={where}/{m}/tls.crt --from-file=tls.key={where}/{m}/tls.key" for m in PODS]
    for member, name in PODS.items():
        d = where / member
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        assert all(stat.S_IMODE((d / f).stat().st_mode) == 0o600 for f in ("ca.crt", "tls.crt", "tls.key"))
        cert, key, ca = (d / "tls.crt").read_bytes(), (d / "tls.key").read_bytes(), (d / "ca.crt").read_bytes()
        assert name in _sans(cert) and certs.key_matches(cert, key) and certs.signed_by(cert, ca)
    for root, dirs, _files in os.walk(where):
        assert all(stat.S_IMODE(os.stat(os.path.join(root, x)).st_mode) == 0o700 for x in dirs)
    # the next render reuses the CA and the certificates (the Secrets need not change)
    before = {p: p.read_bytes() for p in where.rglob("*") if p.is_file()}
    assert k8s_tls.write_material(profile, out) == commands
    assert {p: p.read_bytes() for p in where.rglob("*") if p.is_file()} == before
    # the hosts' store (tls.store) is not touched: the pods' CA is the render's own
    assert not (tmp_path / "hosts-store").exists()


@pytest.mark.parametrize("inside", ["out", "child", "parent"])
def test_the_tls_dir_is_never_the_applied_dir(profile: Profile, tmp_path: Path, inside: str) -> None:
    out = tmp_path / "m"
    tls_dir = {"out": out, "child": out / "tls", "parent": tmp_path}[inside]
    with pytest.raises(K8sError, match=r"--tls-dir .* applied with kubectl; give a directory outside it"):
        k8s_tls.write_material(profile, out, tls_dir)
    assert not (out / "tls").exists()


def _own_files(tmp_path: Path, names: dict[str, str]) -> Path:
    """A CA and certificates for studio1, studio2, arbiter with the given DNS names, as an operator has them."""
    ca = certs.new_ca("operator CA")
    tmp_path.mkdir()
    (tmp_path / "ca.pem").write_bytes(ca.cert)
    for node, name in names.items():
        pair = certs.new_node_cert(ca, node, [node, name], 30)
        (tmp_path / f"{node}.crt").write_bytes(pair.cert)
        (tmp_path / f"{node}.key").write_bytes(pair.key)
    return tmp_path


def _own_profile(tmp_path: Path) -> Profile:
    data = example_data(tls=True)
    data["tls"].update(ca_cert=str(tmp_path / "ca.pem"), cert=str(tmp_path / "{node}.crt"),
                       key=str(tmp_path / "{node}.key"))
    return validate_profile(data, check_files=False)


def test_the_operators_own_files_are_named_as_they_are(tmp_path: Path) -> None:
    own = _own_files(tmp_path / "pki", dict(zip(["studio1", "studio2", "arbiter"], PODS.values(), strict=True)))
    commands = k8s_tls.write_material(_own_profile(own), tmp_path / "m")
    assert commands[0] == (f"kubectl -n studio-cluster create secret generic studio-cluster-tls-galera-0 "
                           f"--from-file=ca.crt={own}/ca.pem --from-file=tls.crt={own}/studio1.crt "
                           f"--from-file=tls.key={own}/studio1.key")
    assert commands[2].endswith(f"--from-file=tls.crt={own}/arbiter.crt --from-file=tls.key={own}/arbiter.key")
    assert not (tmp_path / "m-tls").exists()  # nothing written: their files are used as they are


def test_an_own_certificate_without_the_pods_name_is_refused_with_the_fix(tmp_path: Path) -> None:
    names = dict(zip(["studio1", "studio2", "arbiter"], PODS.values(), strict=True))
    names["studio2"] = "studio2.example.com"
    own = _own_files(tmp_path / "pki", names)
    with pytest.raises(K8sError) as err:
        k8s_tls.write_material(_own_profile(own), tmp_path / "m")
    assert f"tls.cert {own}/studio2.crt" in str(err.value) and PODS["galera-1"] in str(err.value)
    assert "reissue it with that name" in str(err.value)


def test_k8s_render_of_the_example_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TLS on: the manifests, then the TLS Secrets' commands between the password Secret and the apply."""
    out = tmp_path / "m"
    assert main(["k8s", "render", str(example_file(tmp_path, tls=True)), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = [line.strip() for line in text.splitlines()]
    tls_lines = [i for i, line in enumerate(lines) if "create secret generic studio-cluster-tls-" in line]
    secret = next(i for i, line in enumerate(lines) if "create secret generic studio-cluster --from-literal" in line)
    apply = next(i for i, line in enumerate(lines) if line.startswith("kubectl apply --server-side"))
    assert len(tls_lines) == 3 and secret < tls_lines[0] and tls_lines[-1] < apply
    assert f"--from-file=tls.key={tmp_path}/m-tls/galera-0/tls.key" in text
    assert not [p for p in out.iterdir() if "tls" in p.name or p.suffix in (".key", ".crt", ".pem")]
    # --tls-dir elsewhere
    assert main(["k8s", "render", str(example_file(tmp_path, tls=True)), "--out", str(out),
                 "--tls-dir", str(tmp_path / "keys")]) == 0
    assert f"--from-file=tls.key={tmp_path}/keys/garbd/tls.key" in capsys.readouterr().out
    # inside --out: refused, named
    assert main(["k8s", "render", str(example_file(tmp_path, tls=True)), "--out", str(out),
                 "--tls-dir", str(out / "keys")]) == 2
    assert "--tls-dir" in capsys.readouterr().err


def test_the_pod_view_keeps_the_tls_section(profile: Profile) -> None:
    assert pod_profile(profile).tls == profile.tls
    assert k8s_tls.pod_names(profile) == PODS


def test_the_generated_secrets_make_a_mutual_tls_handshake_by_pod_name(tmp_path: Path) -> None:
    """Real TLS (OpenSSL through Python's ssl, on a loopback socket pair): galera-1 connects to galera-0 by its pod
    DNS name with hostname checking, each side verifying the other's certificate against its Secret's ca.crt."""
    import socket
    import ssl
    import threading

    where = tmp_path / "m-tls"
    k8s_tls.write_material(example_profile(tls=True), tmp_path / "m")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(where / "galera-0" / "tls.crt", where / "galera-0" / "tls.key")
    server.load_verify_locations(where / "galera-0" / "ca.crt")
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=str(where / "galera-1" / "ca.crt"))
    client.load_cert_chain(where / "galera-1" / "tls.crt", where / "galera-1" / "tls.key")
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    peer: dict[str, Any] = {}

    def serve() -> None:
        with server.wrap_socket(a, server_side=True) as s:
            peer.update(s.getpeercert() or {})
            s.sendall(s.recv(5))

    t = threading.Thread(target=serve)
    t.start()
    with client.wrap_socket(b, server_hostname=PODS["galera-0"]) as c:
        c.sendall(b"hello")
        assert c.recv(5) == b"hello"
    t.join(10)
    assert ("DNS", PODS["galera-1"]) in peer["subjectAltName"]
    # another pod's name is refused by the hostname check
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    t = threading.Thread(target=lambda: _quiet_accept(server, a))
    t.start()
    with pytest.raises(ssl.SSLCertVerificationError):
        client.wrap_socket(b, server_hostname=PODS["garbd"])
    b.close()
    t.join(10)


def _quiet_accept(ctx: Any, sock: Any) -> None:
    import ssl
    try:
        ctx.wrap_socket(sock, server_side=True).close()
    except (ssl.SSLError, OSError):
        sock.close()
