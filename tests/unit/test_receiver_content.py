"""The snapshot receiver (:mod:`wizard.agent.receiver`) against a real donor-side stream on loopback: a real
xbstream made by ``mbstream -c``, a real tar of a real git repository, the end marker as the donor's
``wsrep_sst_studio_backup`` sends it.  What makes a backup that carries Crafter's content repositories
complete, and what makes it fail."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from wizard.agent import receiver

pytestmark = pytest.mark.skipif(shutil.which("mbstream") is None or shutil.which("git") is None,
                                reason="needs mbstream (mariadb-backup) and git")

TOKEN = "t0k3n"


def xbstream(tmp: Path) -> bytes:
    """The files mariabackup --galera-info leaves at the end of a backup, as an xbstream."""
    src = tmp / "src"
    src.mkdir()
    (src / "mariadb_backup_checkpoints").write_text("backup_type = full-backuped\n")
    (src / "mariadb_backup_galera_info").write_text("0f2b7e3c-1111-11ef-9a7a-5b1e5f2b7e3c:42\n")
    (src / "mariadb_backup_info").write_text("tool_version = 10.11.6-MariaDB\n")
    (src / "ibdata1").write_bytes(b"\0" * 4096)
    names = sorted(p.name for p in src.iterdir())
    return subprocess.run(["mbstream", "-c", *names], cwd=src, check=True, capture_output=True).stdout


def content_tar(tmp: Path) -> tuple[bytes, str]:
    """A tar of ``repos/`` holding one git repository with one commit (and a symlink): (bytes, HEAD)."""
    repos = tmp / "crafter" / "repos"
    repo = repos / "global"
    repo.mkdir(parents=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "HOME": str(tmp), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "site.xml").write_text("<site/>\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "one"], check=True, env=env)
    (repos / "latest").symlink_to("global")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(repos, arcname="repos")
    return out.getvalue(), head


def run_receiver(tmp: Path, content: str, sends: list[bytes]) -> tuple[int, Path]:
    """The receiver on a free loopback port, fed ``sends`` one connection each, in order: (exit code, dir)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp / "backup"
    args = ["--dir", str(directory), "--bind", "127.0.0.1", "--port", str(port), "--token", TOKEN, "--donor", "s2",
            "--accept-timeout", "20", "--end-timeout", "20", *(["--content", content] if content else [])]
    rc: list[int] = []
    t = threading.Thread(target=lambda: rc.append(receiver.main(args)))
    t.start()
    for payload in sends:
        for _ in range(200):
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                threading.Event().wait(0.05)
        with conn:
            conn.sendall(payload)
    t.join(60)
    assert rc, "the receiver did not finish"
    return rc[0], directory


def state(directory: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads((directory / receiver.STATE).read_text())
    return result


def test_content_repositories_travel_with_the_snapshot_and_are_in_the_manifest(tmp_path: Path) -> None:
    tar, head = content_tar(tmp_path)
    rc, d = run_receiver(tmp_path, "repos", [
        f"STUDIO-BACKUP-DATA {TOKEN}\n".encode() + xbstream(tmp_path),
        f"STUDIO-BACKUP-CONTENT {TOKEN}\n".encode() + tar,
        f"STUDIO-BACKUP-END {TOKEN} 0 0 0\nlog line\n".encode(),
    ])
    assert rc == 0, state(d)
    manifest = json.loads((d / receiver.MANIFEST).read_text())
    content = manifest["content"]
    assert content["dir"] == "repos" and content["repos"] == ["repos/global"]
    assert content["files"]["repos/latest"] == {"symlink": "global"}
    assert content["files"]["repos/global/site.xml"]["size"] == len("<site/>\n")
    assert content["stream_bytes"] == len(tar)
    # the copy is a working repository at the donor's commit
    got = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(d / "content" / "repos" / "global"),
                          "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert got == head
    assert manifest["position"] == {"uuid": "0f2b7e3c-1111-11ef-9a7a-5b1e5f2b7e3c", "seqno": 42}


@pytest.mark.parametrize(("end", "says"), [
    ("0 0 absent", "has no content directory repos"),
    ("0 0 1", "content tar exited 1"),
    ("0 0", "predates them"),
])
def test_expected_content_that_does_not_come_is_a_failed_backup(tmp_path: Path, end: str, says: str) -> None:
    rc, d = run_receiver(tmp_path, "repos", [
        f"STUDIO-BACKUP-DATA {TOKEN}\n".encode() + xbstream(tmp_path),
        f"STUDIO-BACKUP-END {TOKEN} {end}\n".encode(),
    ])
    st = state(d)
    assert rc == 1 and st["state"] == "failed" and says in str(st["reason"]), st
    assert not (d / receiver.MANIFEST).exists()


def test_a_database_only_donor_needs_no_content(tmp_path: Path) -> None:
    rc, d = run_receiver(tmp_path, "", [
        f"STUDIO-BACKUP-DATA {TOKEN}\n".encode() + xbstream(tmp_path),
        f"STUDIO-BACKUP-END {TOKEN} 0 0 none\n".encode(),
    ])
    assert rc == 0, state(d)
    assert json.loads((d / receiver.MANIFEST).read_text())["content"] is None


def test_a_donor_script_from_before_the_member_count_still_delivers(tmp_path: Path) -> None:
    """A node whose script predates ``HOST:PORT/TOKEN/SIZE`` takes ``TOKEN/SIZE`` for its token: still this
    backup's; another token with a count is not."""
    rc, d = run_receiver(tmp_path, "", [
        f"STUDIO-BACKUP-DATA {TOKEN}x/3\n".encode() + b"not ours",
        f"STUDIO-BACKUP-DATA {TOKEN}/3\n".encode() + xbstream(tmp_path),
        f"STUDIO-BACKUP-END {TOKEN}/3 0 0 none\n".encode(),
    ])
    assert rc == 0, state(d)
