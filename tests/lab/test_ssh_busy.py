"""An sshd that drops a connection before its banner (starting up, or over OpenSSH's MaxStartups, as a loaded
machine right after `lab up` showed: "Error reading SSH protocol banner") is tried again, a bounded number of
times; a host that never answers is still one clear error.  Between us and a lab host's real sshd sits a loopback
relay that closes the first connections unanswered, the way sshd's MaxStartups does."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.profile import Profile
from wizard.remote import CONNECT_ATTEMPTS, Remote, UnreachableError


class DroppingRelay:
    """Accepts on 127.0.0.1; closes the first ``drop`` connections at once, relays the others to ``target``."""

    def __init__(self, target: tuple[str, int], drop: int) -> None:
        self.target, self.drop, self.accepted = target, drop, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drop:
                client.close()
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def through(profile: Profile, relay: DroppingRelay, tmp_path: Path) -> Profile:
    """The profile with studio1 reached through the relay; its host key on file under the relay's name."""
    node = profile.node("studio1")
    on_file = Path(str(node.ssh.known_hosts)).read_text().splitlines()
    lines = [f"[127.0.0.1]:{relay.port} " + ln.split(None, 1)[1] for ln in on_file
             if ln.split(None, 1)[0].split(",")[0] == node.address]
    assert lines, f"no known_hosts line for {node.address}"
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    p = profile.model_copy(deep=True)
    n = p.node("studio1")
    n.address, n.ssh.port, n.ssh.known_hosts = "127.0.0.1", relay.port, known
    return p


@pytest.fixture
def relay(profile: Profile) -> Iterator[DroppingRelay]:
    r = DroppingRelay((profile.node("studio1").address, profile.node("studio1").ssh.port), drop=CONNECT_ATTEMPTS - 1)
    yield r
    r.close()


def test_connections_dropped_before_the_banner_are_tried_again(profile: Profile, relay: DroppingRelay,
                                                               tmp_path: Path) -> None:
    p = through(profile, relay, tmp_path)
    with Remote(p) as remote:
        assert remote["studio1"].run(["echo", "answered"], timeout=20).stdout.strip() == "answered"
    assert relay.accepted == CONNECT_ATTEMPTS  # dropped twice, answered on the third


def test_a_host_that_always_drops_is_one_clear_error(profile: Profile, tmp_path: Path) -> None:
    always = DroppingRelay((profile.node("studio1").address, 22), drop=10**6)
    try:
        p = through(profile, always, tmp_path)
        with Remote(p) as remote, pytest.raises(UnreachableError) as err:
            remote["studio1"].run(["true"], timeout=20)
        assert "protocol banner" in str(err.value) or "closed" in str(err.value), err.value
        assert always.accepted == CONNECT_ATTEMPTS, always.accepted
    finally:
        always.close()
