"""Bringing the lab up (idempotent, repairing what it can) and down, and the `lab` command."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wizard.lab import studio_standin
from wizard.lab.hosts import _await_host, _await_sshd, _prepare_host, _start_host, _start_sshd_now, write_known_hosts
from wizard.lab.infra import _await_pdns, _await_redis, _start_pdns_now, _start_redis_now, stop_redis, write_zone
from wizard.lab.layout import (
    BRIDGE,
    HOSTS,
    INFRA,
    LAB_DIR,
    VETH_PREFIX,
    LabError,
    Progress,
    host_dir,
    infra_dir,
    key_path,
    known_hosts_path,
    netns_name,
    secret_path,
    template_datadir,
)
from wizard.lab.netns import _build_network, _lab_netns_present, _netns_ident, _pids_in_net_ident
from wizard.lab.processes import _kill_pidfile, _link_exists, _pid_alive, _read_pid, _run, _unescape, _write, file_lock
from wizard.lab.state import LabStatus, status


def _lock() -> contextlib.AbstractContextManager[None]:
    return file_lock(LAB_DIR)


def _ensure_persistent(progress: Progress) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(LAB_DIR, 0o755)  # the mysql user must traverse it to build the template datadir
    if not (key_path().exists() and key_path().with_suffix(".pub").exists()):
        progress("creating the lab client key")
        key_path().unlink(missing_ok=True)
        key_path().with_suffix(".pub").unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "studio-cluster-lab", "-f", str(key_path())])
    sdir = LAB_DIR / "secrets"
    sdir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(sdir, 0o700)
    for which in ("redis_password", "sst_password", "pdns_api_key"):
        p = secret_path(which)
        if not p.exists():
            _write(p, secrets.token_urlsafe(24) + "\n", 0o600)
    if not (template_datadir() / "mysql").is_dir():
        progress("initialising the template MariaDB datadir (once)")
        tmp = LAB_DIR / "template-datadir.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        shutil.chown(tmp, "mysql", "mysql")
        proc = _run(["mariadb-install-db", "--user=mysql", f"--datadir={tmp}",
                     "--auth-root-authentication-method=socket", "--skip-test-db"], check=False, timeout=120)
        if proc.returncode != 0:
            raise LabError(f"mariadb-install-db failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        shutil.rmtree(template_datadir(), ignore_errors=True)
        tmp.rename(template_datadir())


def up(progress: Progress = print) -> LabStatus:
    """Bring the lab up (idempotent).  A healthy lab is left alone; a lab whose network and hosts are in
    place gets only its stopped services (sshd, Redis, PowerDNS) restarted; anything else is torn down
    and rebuilt from scratch."""
    t0 = time.monotonic()
    with _lock():
        st = status()
        if st.all_up:
            _ensure_persistent(progress)
            write_known_hosts()
            studio_standin.ensure(progress)
            progress("lab is already up")
            return st
        if st.structure_ok:
            _ensure_persistent(progress)
            _repair(st, progress)
        else:
            if st.anything_present or (LAB_DIR / "hosts").exists():
                progress("cleaning up a previous lab")
            _teardown(progress)  # also ends helpers (cp, ssh-keygen, ...) of an interrupted run
            _ensure_persistent(progress)
            _build(progress)
        write_known_hosts()
        studio_standin.ensure(progress)  # the stand-in Crafter on the Studio hosts
        st = status()
    if not st.all_up:
        raise LabError("the lab did not come up:\n" + st.table())
    progress(f"lab is up ({time.monotonic() - t0:.1f} s)")
    return st


def _repair(st: LabStatus, progress: Progress) -> None:
    for name, hs in st.hosts.items():
        if not hs.sshd:
            progress(f"starting sshd on {name}")
            _await_host(name)  # an interrupted `lab up` may have left it still mounting its private dirs (/run)
            _start_sshd_now(name)
    if not st.redis:
        progress("restarting Redis")
        stop_redis()
        _start_redis_now()
    if not st.pdns:
        progress("restarting PowerDNS")
        _kill_pidfile(infra_dir() / "pdns.pid", "pdns_server")
        _start_pdns_now()
    for name, hs in st.hosts.items():
        if not hs.sshd:
            _await_sshd(name)
    _await_redis()
    _await_pdns()
    if not st.sentinel:
        from wizard import labredis

        progress("starting the stopped Redis and Sentinel processes on the hosts")
        labredis.repair()
        labredis.await_healthy()


def _build(progress: Progress) -> None:
    _build_network(progress)
    progress("preparing host directories")
    with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:  # mostly cp and ssh-keygen: run them side by side
        for fut in [pool.submit(_prepare_host, name, ip) for name, ip in HOSTS.items()]:
            fut.result()
    progress("starting hosts")
    for name in HOSTS:
        _start_host(name)
    infra_dir().mkdir(parents=True, exist_ok=True)
    write_zone()
    progress("starting Redis and PowerDNS")
    _start_redis_now()
    _start_pdns_now()
    for name in HOSTS:
        _await_host(name)
        _start_sshd_now(name)
    for name in HOSTS:
        _await_sshd(name)
    from wizard import labredis

    progress("starting a Redis and a Sentinel on each host")
    labredis.build()
    _await_redis()
    _await_pdns()
    labredis.await_healthy()


def down(progress: Progress = print) -> None:
    """Tear the lab down (idempotent, also after an interrupted run): kill everything in the lab
    namespaces, delete them and the bridge, remove per-run state.  Keeps the key, secrets and template."""
    with _lock():
        _teardown(progress)
    progress("lab is down")


def _lab_pids_from_files() -> list[int]:
    pids = []
    names = set(HOSTS)
    if (LAB_DIR / "hosts").is_dir():
        names |= {p.name for p in (LAB_DIR / "hosts").iterdir()}
    for name in sorted(names):
        lab = host_dir(name) / "lab"
        for f, expect in (("init.pid", "labhost_init.py"), ("unshare.pid", "unshare")):
            pid = _read_pid(lab / f)
            if pid and _pid_alive(pid, expect):
                pids.append(pid)
    for f, expect in (("redis.pid", "redis-server"), ("pdns.pid", "pdns_server")):
        pid = _read_pid(infra_dir() / f)
        if pid and _pid_alive(pid, expect):
            pids.append(pid)
    return pids


LAB_HELPERS = frozenset({"cp", "rm", "mv", "chown", "chmod", "tar", "rsync", "ssh-keygen", "mariadb-install-db",
                         "mysql_install_db", "mariadbd", "mysqld", "my_print_defaults", "resolveip"})


def _stray_helpers() -> list[int]:
    """Processes of an interrupted run that are in no lab namespace but work on per-run lab paths (a
    `cp -a` of a datadir, `ssh-keygen` of a host key, `mariadb-install-db` of the template...)."""
    needles = [f"{LAB_DIR}/hosts", f"{LAB_DIR}/infra", f"{LAB_DIR}/template-datadir.tmp", str(key_path())]
    mine = set()
    pid = os.getpid()
    while pid > 1:  # never ourselves or our ancestors
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmd = b" ".join(argv).decode(errors="replace")
        # only the programs the lab itself runs on those paths: a shell or a flock that merely names a lab
        # path (someone's `flock LOCK sh -c '... /var/lib/studio-cluster-lab/hosts/...'`) is not ours to kill
        if os.path.basename(argv[0].decode(errors="replace")) not in LAB_HELPERS:
            continue
        if any(n in cmd for n in needles) and _pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _teardown(progress: Progress) -> None:
    present = _lab_netns_present()
    idents = [i for i in (_netns_ident(n) for n in present) if i is not None]
    victims = set(_lab_pids_from_files()) | set(_stray_helpers())
    for ident in idents:
        victims.update(_pids_in_net_ident(ident))
    if victims:
        progress(f"stopping {len(victims)} lab processes")
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def all_gone() -> bool:
        if any(_pid_alive(p) for p in victims):
            return False
        return not any(_pids_in_net_ident(i) for i in idents)

    def leftover() -> str:
        alive = [p for p in victims if _pid_alive(p)]
        for i in idents:
            alive += _pids_in_net_ident(i)
        for p in alive:  # anything that appeared meanwhile (e.g. an nsenter racing us)
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        return f"still alive: {sorted(set(alive))}"

    deadline = time.monotonic() + 10
    while not all_gone():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after 10 s waiting for the lab processes to exit ({leftover()})")
        leftover()
        time.sleep(0.02)

    for n in present:
        _run(["ip", "netns", "delete", netns_name(n)], check=False)
    for ifname in [BRIDGE, *(VETH_PREFIX + n for n in [INFRA[0], *HOSTS])]:
        if _link_exists(ifname):
            _run(["ip", "link", "delete", ifname], check=False)
    doomed = (LAB_DIR / "hosts", infra_dir(), LAB_DIR / "template-datadir.tmp")
    _check_no_mounts_under_lab(doomed)
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
        if p.exists():
            raise LabError(f"could not remove {p}")
    known_hosts_path().unlink(missing_ok=True)
    left = _lab_netns_present()
    if left or _link_exists(BRIDGE):
        raise LabError(f"could not remove lab network: netns {left}, bridge present: {_link_exists(BRIDGE)}")


def _check_no_mounts_under_lab(doomed: Sequence[Path], mountinfo: str | None = None) -> None:
    """Refuse to delete per-run state if something is mounted under it in *our* mount namespace.

    Only the directories ``lab down`` removes (``doomed``) count: the systemd lab keeps its own tree under
    ``LAB_DIR/systemd``, and its first ``debootstrap`` mounts ``/proc`` there while it builds the base (a fresh
    machine's ``make test`` runs both labs' set-up at once).  ``mountinfo`` is /proc/self/mountinfo's text unless
    given.  Raises :class:`LabError` naming the mount."""
    prefixes = [str(p).rstrip("/") for p in doomed]
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    for line in text.splitlines():
        mp = _unescape(line.split()[4])
        if any(mp == pre or mp.startswith(pre + "/") for pre in prefixes):
            raise LabError(f"{mp} is mounted in the root mount namespace; unmount it before `lab down`")


def lab_command(argv: Sequence[str] | None, actions: Mapping[str, Callable[[], Any]], usage: str,
                root_for: str) -> int:
    """One lab's ``lab ACTION`` command: run the action the one argument names.  An action that returns a
    status prints its table (exit 0 only when the lab is all up); one that returns None exits 0.  Exit 2
    on a bad argument, 1 without root (`root_for` says what it is needed for) or on a LabError."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in actions:
        print(usage, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(f"the lab needs root ({root_for})", file=sys.stderr)
        return 1
    try:
        st = actions[args[0]]()
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if st is None:
        return 0
    print(st.table())
    return 0 if st.all_up else 1


def main(argv: Sequence[str] | None = None) -> int:
    return lab_command(argv, {"up": up, "down": down, "status": status}, "usage: studio-cluster lab up|down|status",
                       "network namespaces, bridges, mounts")
