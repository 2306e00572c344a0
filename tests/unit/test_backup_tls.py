"""TLS of the backup streams, on loopback with real certificates (``wizard.tls.certs``): the donor's socat
``OPENSSL`` client into the snapshot receiver, and restore's SEND (on the Arbiter) to RECEIVE (on a node).
Both ends verify the other against the CA bundle; a certificate of another CA is refused and named."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.unit.test_receiver_content import TOKEN, xbstream
from wizard.agent import receiver
from wizard.backups.restore import RECEIVE_SCRIPT, SEND_SCRIPT
from wizard.tls import certs

pytestmark = pytest.mark.skipif(shutil.which("socat") is None or shutil.which("mbstream") is None,
                                reason="needs socat and mbstream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ca.pem; arbiter/node certificates of that CA (SAN 127.0.0.1); rogue: a node certificate of another CA."""
    d = tmp_path_factory.mktemp("pki")
    ca, other = certs.new_ca("cluster CA"), certs.new_ca("another CA")
    out = {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem"}
    out["ca"].write_bytes(ca.cert)
    out["other_ca"].write_bytes(other.cert)
    for name, issuer in (("arbiter", ca), ("node", ca), ("rogue", other)):
        pair = certs.new_node_cert(issuer, name, [name, "127.0.0.1"], 30)
        (d / f"{name}.pem").write_bytes(pair.cert)
        (d / f"{name}.key").write_bytes(pair.key)
        out[name], out[name + "_key"] = d / f"{name}.pem", d / f"{name}.key"
    return out


def socat_send(port: int, payload: bytes, cert: Path, key: Path, ca: Path) -> int:
    """What the donor's script does: socat -u STDIN OPENSSL:HOST:PORT,cert,key,cafile,verify=1."""
    for _ in range(100):  # until the receiver listens
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        threading.Event().wait(0.05)
    return subprocess.run(["socat", "-u", "STDIN",
                           f"OPENSSL:127.0.0.1:{port},cert={cert},key={key},cafile={ca},verify=1,connect-timeout=5"],
                          input=payload, capture_output=True, timeout=30).returncode


def receive(tmp: Path, pki: dict[str, Path], donor_cert: str, accept_timeout: float = 20) -> tuple[int, dict]:
    port = free_port()
    d = tmp / "backup"
    rc: list[int] = []
    args = ["--dir", str(d), "--bind", "127.0.0.1", "--port", str(port), "--token", TOKEN, "--donor", "s2",
            "--accept-timeout", str(accept_timeout), "--end-timeout", "10", "--tls-cert", str(pki["arbiter"]),
            "--tls-key", str(pki["arbiter_key"]), "--tls-ca", str(pki["ca"])]
    t = threading.Thread(target=lambda: rc.append(receiver.main(args)))
    t.start()
    cert, key = pki[donor_cert], pki[donor_cert + "_key"]
    socat_send(port, f"STUDIO-BACKUP-DATA {TOKEN}\n".encode() + xbstream(tmp), cert, key, pki["ca"])
    socat_send(port, f"STUDIO-BACKUP-END {TOKEN} 0 0 none\n".encode(), cert, key, pki["ca"])
    t.join(60)
    return rc[0], json.loads((d / receiver.STATE).read_text())


def test_a_snapshot_over_tls_from_a_donor_of_the_cluster_ca_is_complete(tmp_path: Path, pki: dict[str, Path]) -> None:
    rc, state = receive(tmp_path, pki, "node")
    assert rc == 0 and state["state"] == "complete", state
    assert (tmp_path / "backup" / receiver.MANIFEST).exists()


def test_a_donor_with_a_certificate_of_another_ca_is_refused_and_named(tmp_path: Path, pki: dict[str, Path]) -> None:
    rc, state = receive(tmp_path, pki, "rogue", accept_timeout=4)
    assert rc == 1 and state["state"] == "failed", state
    assert "no donor connected" in state["reason"] and "TLS handshake failed" in state["reason"], state["reason"]
    assert not (tmp_path / "backup" / receiver.MANIFEST).exists()


def transfer(tmp: Path, pki: dict[str, Path], node_cert: str, node_ca: str) -> tuple[dict, dict]:
    """SEND a directory on loopback with the Arbiter's certificate; RECEIVE it with ``node_cert``, trusting
    ``node_ca``.  (SEND's result, RECEIVE's result)."""
    src = tmp / "src"
    (src / "repos").mkdir(parents=True)
    (src / "repos" / "file").write_text("content\n")
    port = free_port()
    sent: list[str] = []

    def send() -> None:
        p = subprocess.run([sys.executable, "-c", SEND_SCRIPT, "127.0.0.1", str(port), "tok", str(src), "5",
                            str(pki["arbiter"]), str(pki["arbiter_key"]), str(pki["ca"])],
                           capture_output=True, text=True, timeout=60)
        sent.append(p.stdout)

    t = threading.Thread(target=send)
    t.start()
    got = subprocess.run([sys.executable, "-c", RECEIVE_SCRIPT, "127.0.0.1", str(port), "tok", str(tmp / "dest"),
                          str(pki[node_cert]), str(pki[node_cert + "_key"]), str(pki[node_ca])],
                         capture_output=True, text=True, timeout=60)
    t.join(60)
    return json.loads(sent[0].strip().splitlines()[-1]), json.loads(got.stdout.strip().splitlines()[-1])


def test_restore_pulls_the_copy_over_tls(tmp_path: Path, pki: dict[str, Path]) -> None:
    sent, got = transfer(tmp_path, pki, "node", "ca")
    assert sent.get("tar") == 0 and got.get("tar") == 0, (sent, got)
    assert (tmp_path / "dest" / "repos" / "file").read_text() == "content\n"


def test_restore_refuses_a_node_of_another_ca(tmp_path: Path, pki: dict[str, Path]) -> None:
    sent, _got = transfer(tmp_path, pki, "rogue", "ca")
    assert "TLS handshake failed" in sent.get("error", ""), sent
    assert not (tmp_path / "dest" / "repos").exists()


def test_a_node_that_does_not_trust_the_arbiter_stops_before_sending_its_token(tmp_path: Path,
                                                                               pki: dict[str, Path]) -> None:
    _sent, got = transfer(tmp_path, pki, "node", "other_ca")
    assert "TLS with 127.0.0.1" in got.get("error", "") and "certificate verify failed" in got["error"], got
