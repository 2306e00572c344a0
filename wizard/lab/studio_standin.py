"""The lab's stand-in Crafter: on each Studio host, a stand-in Studio (status URL + cluster API that records
calls: :mod:`wizard.lab.studio_standin_server`), Crafter's OS user and a stand-in content repository.

Where things are, inside each Studio host (``/opt`` is private to a host; see ``wizard/labhost_init.py``):

* ``CRAFTER_ROOT`` (``/opt/crafter-lab``): the ``crafter`` user's home (``.ssh/`` of its own) and
  ``data/repos/global``, a git repository standing for Crafter's content (``studio.data_path`` in
  ``profiles/lab.yaml``).  Not ``/opt/crafter``: that is the install path, absent where Crafter's files
  are not installed (tests/lab/test_cluster.py relies on it).
* ``standin/``: the stand-in's pid, log and ``calls.jsonl`` (one JSON line per cluster API call).

The ``crafter`` user is a system account of the machine (namespace hosts share ``/etc/passwd``): created
once, with the home above, a shell for git over SSH, and no password (``*``: not locked, so sshd lets it
in by key).  :func:`ensure` is idempotent and runs at every ``lab up``.
"""

from __future__ import annotations

import json
import pwd
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from wizard.lab.hosts import host_exec, host_spawn
from wizard.lab.layout import HOSTS, SYSTEM_PYTHON, LabError, Progress, host_dir, secret_path
from wizard.lab.processes import _run, _write

CRAFTER_USER = "crafter"
CRAFTER_ROOT = "/opt/crafter-lab"
REPO = f"{CRAFTER_ROOT}/data/repos/global"
STANDIN_PORT = 8080
STANDIN_DIR = f"{CRAFTER_ROOT}/standin"
SERVER = Path(__file__).resolve().parent / "studio_standin_server.py"
TOKEN = "studio_token"  # noqa: S105 (the name of the lab's secret file, not a token)


def studio_hosts() -> list[str]:
    return [name for name in HOSTS if name.startswith("studio")]


def _outside(name: str, path: str) -> Path:
    """A path inside host `name` as seen from the root namespace."""
    return host_dir(name) / path.lstrip("/")


def ensure_user() -> None:
    try:
        pwd.getpwnam(CRAFTER_USER)
    except KeyError:
        _run(["useradd", "--system", "--user-group", "--home-dir", CRAFTER_ROOT, "--no-create-home",
              "--shell", "/bin/sh", "--comment", "Crafter (studio-cluster lab)", CRAFTER_USER])
    _run(["usermod", "-p", "*", CRAFTER_USER])  # no password, not locked: sshd admits it by key


def _ensure_tree(name: str) -> None:
    """Home, .ssh and the stand-in repository of host `name` (owned by the crafter user), built once."""
    if _outside(name, REPO + "/.git").is_dir():
        return
    script = (
        'set -e; u=$1; root=$2; repo=$3; standin=$4\n'
        'install -d -o "$u" -g "$u" -m 0755 "$root"\n'
        'install -d -o "$u" -g "$u" -m 0700 "$root/.ssh"\n'
        'install -d -o root -g root -m 0755 "$standin"\n'
        'install -d -o "$u" -g "$u" -m 0755 "$root/data" "$root/data/repos" "$repo"\n'
        'cd "$repo"\n'
        'g() { runuser -u "$u" -- env HOME="$root" git -c user.name=lab -c user.email=lab@lab.test "$@"; }\n'
        'g init -q -b master .\n'
        'printf "stand-in content of %s\\n" "$(hostname)" > README\n'
        'chown "$u:$u" README\n'
        'g add README\n'
        'g commit -q -m "stand-in content"\n'
    )
    host_exec(name, ["sh", "-c", script, "tree", CRAFTER_USER, CRAFTER_ROOT, REPO, STANDIN_DIR], timeout=30)


def status_url(name: str) -> str:
    token = secret_path(TOKEN).read_text().strip()
    return f"http://{HOSTS[name]}:{STANDIN_PORT}/studio/api/2/monitoring/status?token={token}"


def studio_up(name: str) -> bool:
    """The stand-in Studio on host `name` answers its status URL with 200 (from the root namespace)."""
    try:
        with urllib.request.urlopen(status_url(name), timeout=1) as resp:  # noqa: S310 (the lab's own URL)
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _pid(name: str) -> int | None:
    try:
        return int(_outside(name, STANDIN_DIR + "/pid").read_text().strip())
    except (OSError, ValueError):
        return None


def start_studio(name: str, timeout: float = 10) -> None:
    """Start the stand-in Studio on host `name` unless it answers already; returns once it answers."""
    if studio_up(name):
        return
    # A copy inside the host: the package may live where the host cannot see it (a private /tmp).
    shutil.copyfile(SERVER, _outside(name, STANDIN_DIR + "/server.py"))
    pid = host_spawn(name, [SYSTEM_PYTHON, STANDIN_DIR + "/server.py", HOSTS[name], str(STANDIN_PORT),
                            str(secret_path(TOKEN)), STANDIN_DIR + "/calls.jsonl"], log=STANDIN_DIR + "/log")
    _write(_outside(name, STANDIN_DIR + "/pid"), f"{pid}\n")
    deadline = time.monotonic() + timeout
    while not studio_up(name):
        if time.monotonic() > deadline:
            log = _outside(name, STANDIN_DIR + "/log")
            tail = log.read_text()[-600:] if log.exists() else ""
            raise LabError(f"the stand-in Studio on {name} did not answer within {timeout:.0f} s: {tail}")
        time.sleep(0.1)


def stop_studio(name: str, timeout: float = 10) -> None:
    """Stop the stand-in Studio on host `name` (a Studio that died); returns once it no longer answers."""
    pid = _pid(name)
    if pid is not None:
        host_exec(name, ["kill", str(pid)], check=False)
    deadline = time.monotonic() + timeout
    while studio_up(name):
        if time.monotonic() > deadline:
            raise LabError(f"the stand-in Studio on {name} still answers {timeout:.0f} s after kill {pid}")
        time.sleep(0.1)


def calls(name: str) -> list[dict[str, Any]]:
    """The primary-publisher calls the stand-in on host `name` recorded, oldest first."""
    path = _outside(name, STANDIN_DIR + "/calls.jsonl")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fail_publisher(name: str, fail: bool = True) -> None:
    """Make the stand-in's cluster API on host `name` answer 503 (``fail``) or work again."""
    flag = _outside(name, STANDIN_DIR + "/fail-publisher")
    if fail:
        _write(flag, "")
    else:
        flag.unlink(missing_ok=True)


def clear_calls(name: str) -> None:
    _outside(name, STANDIN_DIR + "/calls.jsonl").unlink(missing_ok=True)


def ensure(progress: Progress) -> None:
    """The stand-in Crafter on every Studio host: user, tree, repository, token, a running stand-in Studio."""
    if not shutil.which("git"):
        raise LabError("git is not installed; apt-get install git (the lab's stand-in content repositories need it)")
    if not secret_path(TOKEN).exists():
        _write(secret_path(TOKEN), secrets.token_urlsafe(24) + "\n", 0o600)
    ensure_user()
    for name in studio_hosts():
        _ensure_tree(name)
        if not studio_up(name):
            progress(f"starting the stand-in Studio on {name}")
            start_studio(name)
