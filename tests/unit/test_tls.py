"""TLS material and rendering (issue 10): generated CA and node certificates, the operator's own files, the
options rendered for Galera, SST, garbd and clients, private keys never shown, expiry lines."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path, PurePosixPath

import pytest
from cryptography import x509

from wizard.apply import FileChange
from wizard.profile import Profile, ProfileError, load_profile, validate_profile
from wizard.render import TLS_KEY_PLACEHOLDER, RenderError, render
from wizard.secrets import REDACTOR, Secrets
from wizard.tls import certs, material
from wizard.tls.expiry import expiry_lines

LAB = Path(__file__).resolve().parents[2] / "profiles" / "lab.yaml"
EXAMPLE = Path(__file__).resolve().parents[2] / "profiles" / "example.yaml"
CNF = PurePosixPath("/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf")
KEY = PurePosixPath("/etc/studio-cluster/tls/key.pem")
SECRETS = Secrets(sst_password="sst-pass", admin_password=None, redis_password=None)


def tls_profile(tmp_path: Path, **tls: object) -> Profile:
    p = load_profile(LAB, check_files=False)
    return p.model_copy(update={"tls": p.tls.model_copy(update={"enabled": True, "store": tmp_path / "store", **tls})})


def by_path(files: list) -> dict:  # type: ignore[type-arg]
    return {f.path: f for f in files}


def test_generated_material_is_kept_private_and_reused(tmp_path: Path) -> None:
    p = tls_profile(tmp_path)
    first = material.load(p)
    d = tmp_path / "store" / "studio-lab"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for key in d.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert sorted(x.name for x in d.iterdir()) == sorted(
        ["ca.pem", "ca.key"] + [f"{n}.{e}" for n in ("studio1", "studio2", "arbiter") for e in ("pem", "key")])
    for node in p.nodes:
        m = first[node.name]
        cert = x509.load_pem_x509_certificate(m.cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [node.name]
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [node.address]
        assert certs.signed_by(m.cert, m.ca_bundle) and certs.key_matches(m.cert, m.key)
    assert material.load(p) == first, "a second run reuses what the first generated"


def test_a_node_with_a_new_address_gets_a_new_certificate(tmp_path: Path) -> None:
    p = tls_profile(tmp_path)
    before = material.load(p)
    nodes = [n.model_copy(update={"address": "198.18.0.99"}) if n.name == "studio2" else n for n in p.nodes]
    after = material.load(p.model_copy(update={"nodes": nodes}))
    assert after["studio2"].cert != before["studio2"].cert
    assert after["studio1"] == before["studio1"] and after["studio2"].ca_bundle == before["studio2"].ca_bundle


def _own_files(tmp_path: Path, foreign_node: str | None = None) -> Profile:
    ca, other = certs.new_ca("operator CA"), certs.new_ca("another CA")
    (tmp_path / "ca.pem").write_bytes(ca.cert)
    p = load_profile(LAB, check_files=False)
    for node in p.nodes:
        pair = certs.new_node_cert(other if node.name == foreign_node else ca, node.name,
                                   [node.name, node.address], 90)
        (tmp_path / f"{node.name}.crt").write_bytes(pair.cert)
        (tmp_path / f"{node.name}.key").write_bytes(pair.key)
    return tls_profile(tmp_path, ca_cert=str(tmp_path / "ca.pem"), cert=str(tmp_path / "{node}.crt"),
                       key=str(tmp_path / "{node}.key"))


def test_the_operators_own_files_are_used_as_they_are(tmp_path: Path) -> None:
    p = _own_files(tmp_path)
    files = by_path(render(p, SECRETS)["studio1"])
    assert files[PurePosixPath("/etc/studio-cluster/tls/cert.pem")].content == (tmp_path / "studio1.crt").read_text()
    assert not (tmp_path / "store").exists(), "nothing generated"


def test_a_certificate_from_another_ca_is_refused_naming_the_node(tmp_path: Path) -> None:
    p = _own_files(tmp_path, foreign_node="studio2")
    with pytest.raises(RenderError, match=r"certificate of studio2 \(issuer CN=another CA\) is not signed by "
                                          r"tls.ca_cert"):
        render(p, SECRETS)


def test_render_names_the_files_in_every_option(tmp_path: Path) -> None:
    p = tls_profile(tmp_path)
    out = render(p, SECRETS)
    cnf = by_path(out["studio1"])[CNF].content
    for line in ('ssl_ca = "/etc/studio-cluster/tls/ca.pem"', 'ssl_cert = "/etc/studio-cluster/tls/cert.pem"',
                 'ssl_key = "/etc/studio-cluster/tls/key.pem"', "encrypt = 4",
                 'tca = "/etc/studio-cluster/tls/ca.pem"'):
        assert line in cnf
    assert ("socket.ssl=yes;socket.ssl_cert=/etc/studio-cluster/tls/cert.pem;socket.ssl_key="
            "/etc/studio-cluster/tls/key.pem;socket.ssl_ca=/etc/studio-cluster/tls/ca.pem") in cnf
    garb = by_path(out["arbiter"])[PurePosixPath("/etc/default/garb")].content
    assert "socket.ssl=yes;socket.ssl_cert=/etc/studio-cluster/tls/cert.pem" in garb
    for node, group, restart in (("studio1", "mysql", ("mariadb",)), ("arbiter", "nogroup", ("garbd",))):
        key = by_path(out[node])[KEY]
        assert (key.mode, key.owner, key.group, key.secret, key.hide_content, key.restart) == \
            (0o640, "root", group, True, True, restart)
        assert "PRIVATE KEY" in key.content


def test_private_keys_are_never_shown(tmp_path: Path) -> None:
    p = tls_profile(tmp_path)
    key = by_path(render(p, None)["studio1"])[KEY]
    assert key.content == TLS_KEY_PLACEHOLDER, "a plan without secrets holds a placeholder"
    real = by_path(render(p, SECRETS)["studio1"])[KEY]
    diff = FileChange("studio1", real, None, "create").diff
    assert "PRIVATE KEY" not in diff and "not shown" in diff
    body = [ln for ln in real.content.splitlines() if not ln.startswith("-----")]
    assert REDACTOR(real.content).count("***") == len(body), "every line of a key is redacted from logs"
    assert "PRIVATE" not in render(tls_profile(tmp_path), None)["studio1"][0].content


def test_tls_off_renders_nothing_of_it(tmp_path: Path) -> None:
    p = load_profile(LAB, check_files=False)
    out = render(p, SECRETS)
    assert KEY not in by_path(out["studio1"]) and "socket.ssl" not in by_path(out["studio1"])[CNF].content


@pytest.mark.parametrize(("tls", "message"), [
    ({"cert": "generate", "key": "/k/{node}.key"}, "both 'generate' or both paths"),
    ({"ca_cert": "/pki/ca.pem"}, "signs node certificates only with the CA it generates"),
    ({"ca_cert": "ca.pem", "cert": "/c/{node}", "key": "/k/{node}"}, "neither 'generate' nor an absolute path"),
    ({"ca_cert": "/ca.pem", "cert": "/c/studio1.crt", "key": "/k/{node}"}, "has no {node}"),
    ({"remote_dir": "etc/tls"}, "not an absolute directory"),
])
def test_bad_tls_settings_name_the_field_and_the_fix(tls: dict[str, str], message: str) -> None:
    import yaml

    data = yaml.safe_load(LAB.read_text())
    data["tls"] = {"enabled": True, **tls}
    with pytest.raises(ProfileError) as err:
        validate_profile(data, check_files=False)
    text = str(err.value)
    assert "tls" in text and message in text, text


def test_the_example_profile_has_tls_on() -> None:
    assert load_profile(EXAMPLE, check_files=False).tls.enabled


def test_expiry_lines_warn_within_warn_days() -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=12)).isoformat(timespec="seconds")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=800)).isoformat(timespec="seconds")
    lines = expiry_lines({"studio1": {"not_after": later, "days": 800.0, "error": ""},
                          "studio2": {"not_after": soon, "days": 12.0, "error": ""},
                          "arbiter": {"not_after": "", "days": None, "error": "cannot read /x"}}, 30)
    assert lines[0] == (f"TLS certificates expire: studio1 {later[:10]} (800 d), studio2 {soon[:10]} (12 d), "
                        "arbiter unknown", False)
    assert [w for w, warn in lines if warn] == [f"TLS: studio2's certificate or CA expires in 12 days ({soon}): "
                                                "renew it (replay renews generated certificates before tls.warn_days)",
                                                "TLS: arbiter: cannot read /x"]
    assert expiry_lines(None, 30) == [] and expiry_lines({}, 30) == []


def test_a_rotation_in_the_store_is_trusted_alongside_then_signs(tmp_path: Path) -> None:
    """The store states rotate_ca walks through (wizard.tls.rotate): next-ca trusted besides the signing CA with
    certificates unchanged; then the new CA signs and the old one is still trusted; then only the new one."""
    p = tls_profile(tmp_path)
    before = material.load(p)
    d = material.store_dir(p)
    old = (d / "ca.pem").read_bytes()
    new = certs.new_ca("next")
    (d / "next-ca.pem").write_bytes(new.cert)
    (d / "next-ca.key").write_bytes(new.key)
    trust = material.load(p)
    assert all(m.ca_bundle == old + new.cert and m.cert == before[n].cert for n, m in trust.items())
    for ext in ("pem", "key"):
        (d / f"ca.{ext}").rename(d / f"old-ca.{ext}")
        (d / f"next-ca.{ext}").rename(d / f"ca.{ext}")
    reissued = material.load(p)
    assert all(m.ca_bundle == new.cert + old and certs.signed_by(m.cert, new.cert) for m in reissued.values())
    for ext in ("pem", "key"):
        (d / f"old-ca.{ext}").unlink()
    assert all(m.ca_bundle == new.cert for m in material.load(p).values())


def test_the_backups_garbd_joins_with_tls(tmp_path: Path) -> None:
    from wizard.backups.take import garbd_argv

    argv = garbd_argv(tls_profile(tmp_path), "studio2", "tok", "/w", "/l")
    options = argv[argv.index("--options") + 1]
    assert options.endswith(";socket.ssl=yes;socket.ssl_cert=/etc/studio-cluster/tls/cert.pem;socket.ssl_key="
                            "/etc/studio-cluster/tls/key.pem;socket.ssl_ca=/etc/studio-cluster/tls/ca.pem"), options
