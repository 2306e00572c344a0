"""Scheduled snapshot backups, run on the Arbiter host by its agent (stdlib only, Python 3.9+).

``replay`` hands the Arbiter's agent a job description (:func:`wizard.backups.schedule.job_config`) with
``ensure-daemon``; :func:`ensure_schedule` installs it as a systemd timer (``studio-cluster-backup.timer``,
``Persistent=true``) where systemd runs, else as ``/etc/cron.d/studio-cluster-backup``, and removes both when
the profile has no schedule.  Each run is ``agent backup-scheduled`` (:func:`run_scheduled`):

1. the donor is the first data node, in the job's order (the one the authoring name does not prefer first),
   that its health endpoint (the verdict the DNS record uses) says is Primary and Synced, waited for up to a
   minute (a donor still resyncing after the last backup refuses a new request);
2. the receiver ``backup take`` uses (:mod:`wizard.agent.receiver`) listens, a second garbd asks the donor for
   the snapshot; the outcome is the receiver's (complete only with a manifest), never garbd's exit code;
3. a failure is recorded in ``failure.json`` (``"scheduled": true``) and the partial copy removed, so
   ``backup list`` and ``status`` show the reason;
4. the retention policy (:mod:`wizard.agent.retention`, the same code as ``backup prune``) removes what it no
   longer keeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from wizard.agent import retention

TIMER = "studio-cluster-backup.timer"
SERVICE = "studio-cluster-backup.service"
JOB_CONF = "/etc/studio-cluster/backup-job.json"
CRON_FILE = "/etc/cron.d/studio-cluster-backup"
LOG = "/var/log/studio-cluster-backup.log"
RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "receiver.py")


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            out: dict[str, Any] = json.load(fh)
            return out
    except (OSError, ValueError):
        return None


def write_json(path: str, data: dict[str, Any]) -> None:
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def health_body(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The JSON a data node's health endpoint answers ({healthy, state, ...}; 503 bodies too), None when it
    does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (an http URL from the profile)
            raw = resp.read()
    except urllib.error.HTTPError as exc:  # 503: still a body that says why
        raw = exc.read()
    except OSError:
        return None
    try:
        body: dict[str, Any] = json.loads(raw.decode(errors="replace"))
    except ValueError:
        return None
    return body


def choose_donor(donors: list[dict[str, str]],
                 read: Callable[[str], dict[str, Any] | None] = health_body) -> tuple[str, str]:
    """``(donor, why)``: the first of ``donors`` ([{name, health}], in preference order) that is Primary and
    Synced by its health endpoint (a node still donating the last backup answers 200 too, but refuses a new
    request); ``("", why not)`` when none is."""
    seen = []
    for d in donors:
        body = read(d["health"]) or {}
        if body.get("healthy") and body.get("state") == "Synced":
            return d["name"], "Primary and Synced by its health endpoint"
        seen.append("%s: %s" % (d["name"], body.get("reason") or "no answer"))
    return "", "no data node is Primary and Synced (%s)" % "; ".join(seen)


def wait_for_donor(donors: list[dict[str, str]], wait_s: float = 60.0,
                   read: Callable[[str], dict[str, Any] | None] = health_body) -> tuple[str, str]:
    """:func:`choose_donor`, asked again every second for up to ``wait_s`` (a donor resyncing after the last
    backup is Synced again within seconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        donor, why = choose_donor(donors, read)
        if donor or time.monotonic() > deadline:
            return donor, why
        time.sleep(1.0)


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def full_disk_reason(path: str, free: int, total: int, said: str) -> str:
    """The reason to give when the backup disk filled up, "" otherwise: ``said`` (the reason and the logs)
    mentions ENOSPC, or less than 16 MB (or 0.5 %) of ``total`` bytes was ``free`` when the backup failed (a
    receiver that died of a full disk could not even log why).  Pure; ``backup take`` decides with it too."""
    if "No space left on device" in said or "Errno 28" in said or free < max(16 * 10**6, total // 200):
        return ("the Arbiter's backup disk filled up during the backup (%d MB of %d MB left in %s; the partial "
                "copy was removed)" % (free // 10**6, total // 10**6, path))
    return ""


def disk_full(path: str, said: str) -> str:
    """:func:`full_disk_reason` for the disk holding ``path`` on this host ("" when it cannot be read)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return ""
    return full_disk_reason(path, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, said)


COMPONENT = re.compile(r"New COMPONENT: primary = (yes|no), .*memb_num = (\d+)")


def last_component(log_path: str) -> tuple[bool, int] | None:
    """(primary, members) of the last ``New COMPONENT`` line garbd logged, None before the first.  Pure read."""
    try:
        with open(log_path, errors="replace") as fh:
            found = COMPONENT.findall(fh.read()[-200000:])
    except OSError:
        return None
    return (found[-1][0] == "yes", int(found[-1][1])) if found else None


def settle_before_leaving(log_path: str, members: int, timeout: float = 30.0) -> bool:
    """Before the backup's garbd leaves after a failure, wait (up to ``timeout`` s) until its last view is a
    Primary Component of at most ``members`` (the cluster without a donor that died mid-stream), so that its
    leave is not a second membership change on top of the donor's eviction: the two at once were seen to end with
    every member alone and non-Primary (``wizard.backups.take.settle_before_leaving``, the same rule from the
    controller's side).  True when settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = last_component(log_path)
        if view is not None and view[0] and view[1] <= members:
            return True
        time.sleep(0.5)
    return False


def content_args(job: dict[str, Any], donor: str) -> list[str]:
    """The receiver's ``--content NAME`` when ``donor`` carries Crafter's content repositories (the job's donors
    say which), else [].  Pure."""
    name = next((d.get("content") or "" for d in job.get("donors", []) if d.get("name") == donor), "")
    return ["--content", name] if name else []


def take_one(job: dict[str, Any], donor: str, now: float | None = None) -> dict[str, Any]:
    """One backup from ``donor`` into a new directory under ``job["root"]``; returns
    {"id", "path", "state": "complete"|"failed", "reason"}."""
    root = job["root"]
    at = now if now is not None else time.time()
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o751)  # noqa: S103 (others traverse, never list: verify runs its server as mysql)
    for later in range(5):  # ids have whole seconds: a backup of this donor in the same second has it (take too)
        bid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at + later)) + "-" + donor
        path = os.path.join(root, bid)
        try:
            os.mkdir(path, 0o750)
            break
        except FileExistsError:
            continue
    else:
        raise OSError("backups of %s named for the next 5 seconds already exist in %s" % (donor, root))
    token = secrets.token_hex(12)
    receiver = garbd = None
    state: dict[str, Any] = {}

    def failed(reason: str, log: list[str] | None = None) -> dict[str, Any]:
        if garbd is not None and _alive(garbd):
            settle_before_leaving(os.path.join(path, "garbd.log"), len(job.get("donors", [])) + 1)
        _stop(garbd)
        _stop(receiver)
        said = " ".join([reason, *(log or []), *state.get("donor_log", [])])
        reason = disk_full(path, said) or reason
        for part in ("data", "content"):
            shutil.rmtree(os.path.join(path, part), ignore_errors=True)
        with contextlib.suppress(OSError):
            write_json(os.path.join(path, "failure.json"),
                       {"reason": reason, "log": log or state.get("donor_log", []), "time": time.time(),
                        "scheduled": True})
        return {"id": bid, "path": path, "state": "failed", "reason": reason}

    with open(os.path.join(path, "receiver.log"), "ab") as rlog:
        receiver = subprocess.Popen(
            [sys.executable, RECEIVER, "--dir", path, "--bind", job["bind"], "--port", str(job["port"]),
             "--token", token, "--donor", donor, "--accept-timeout", str(job["connect_timeout_s"]),
             "--meta", json.dumps(job.get("meta", {})), *content_args(job, donor), *job.get("receiver_tls", [])],
            stdin=subprocess.DEVNULL, stdout=rlog, stderr=rlog, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        state = read_json(os.path.join(path, "receiver.json")) or {}
        if state.get("state") == "listening":
            break
        if state.get("state") == "failed":
            return failed("the receiver could not start: %s" % state.get("reason"))
        if not _alive(receiver) or time.monotonic() > deadline:
            return failed("the receiver did not start listening")
        time.sleep(0.2)
    argv = [a.replace("@DONOR@", donor).replace("@TOKEN@", token).replace("@WORKDIR@", os.path.join(path, "garbd"))
            .replace("@LOG@", os.path.join(path, "garbd.log")) for a in job["garbd_argv"]]
    os.makedirs(os.path.join(path, "garbd"), exist_ok=True)
    with open(os.path.join(path, "garbd.out"), "ab") as glog:
        garbd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=glog, stderr=glog, start_new_session=True)
    start = time.monotonic()
    garbd_gone_at = None
    while True:
        state = read_json(os.path.join(path, "receiver.json")) or state
        s = state.get("state")
        now_m = time.monotonic()
        if s == "complete":
            break
        if s == "failed":
            return failed("the backup failed: %s" % state.get("reason"))
        if not _alive(receiver):
            return failed("the receiver stopped before the backup was complete")
        if not _alive(garbd) and garbd_gone_at is None:
            garbd_gone_at = now_m
        if s == "listening" and (now_m - start > job["connect_timeout_s"]
                                 or (garbd_gone_at is not None and now_m - garbd_gone_at > 15)):
            return failed("no snapshot arrived from %s: garbd could not join the cluster or the donor refused the "
                          "request" % donor)
        if now_m - start > job["timeout_s"]:
            return failed("the backup took longer than backups.timeout_s (%d s)" % job["timeout_s"])
        time.sleep(0.5)
    _stop(garbd)
    shutil.rmtree(os.path.join(path, "garbd"), ignore_errors=True)
    return {"id": bid, "path": path, "state": "complete", "reason": ""}


def catalog_items(root: str) -> list[retention.Item]:
    """What the retention policy needs of each backup directory under ``root``."""
    items = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        d = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(d):
            continue
        m = read_json(os.path.join(d, "manifest.json"))
        v = read_json(os.path.join(d, "verify.json"))
        r = read_json(os.path.join(d, "receiver.json")) or {}
        if m is not None and m.get("complete") is True:
            state = ("verified" if v.get("ok") else "verify failed") if v is not None else "complete"
            started = float(m.get("started_epoch") or os.path.getmtime(d))
        else:
            pid = r.get("pid") or 0
            alive = False
            with contextlib.suppress(OSError, ValueError, TypeError), \
                    open("/proc/%d/cmdline" % int(pid), "rb") as fh:
                alive = b"receiver" in fh.read()
            running = alive and r.get("state") not in ("complete", "failed") and \
                not os.path.exists(os.path.join(d, "failure.json"))
            state = "in progress" if running else "failed"
            started = float(r.get("started") or os.path.getmtime(d))
        items.append(retention.Item(name, started, state))
    return items


def run_scheduled(job: dict[str, Any]) -> dict[str, Any]:
    """One scheduled run: a backup, then the retention policy.  Returns what happened (also printed)."""
    donor, why = wait_for_donor(job["donors"], float(job.get("donor_wait_s", 60)))
    if not donor:
        out: dict[str, Any] = {"state": "failed", "reason": why, "id": "", "path": ""}
        # recorded like any failed backup, so that `backup list` and `status` show it
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-none"
        path = os.path.join(job["root"], stamp)
        with contextlib.suppress(OSError):
            os.makedirs(path, 0o750)
            write_json(os.path.join(path, "failure.json"), {"reason": why, "log": [], "time": time.time(),
                                                            "scheduled": True})
            out.update(id=stamp, path=path)
    else:
        out = take_one(job, donor)
    removed = []
    try:
        decisions = retention.select(catalog_items(job["root"]), int(job["keep_last"]), int(job["keep_days"]),
                                     time.time())
    except ValueError:
        decisions = []
    for d in decisions:
        if not d.keep and d.id != out.get("id") and "/" not in d.id and not d.id.startswith("."):
            shutil.rmtree(os.path.join(job["root"], d.id), ignore_errors=True)
            removed.append(d.id)
    out["pruned"] = removed
    return out


# -- installing the schedule -------------------------------------------------------------------------------------
def _systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], capture_output=True, timeout=60)


def _write_if_changed(path: str, text: str, mode: int) -> bool:
    with contextlib.suppress(OSError), open(path) as fh:
        if fh.read() == text:
            os.chmod(path, mode)
            return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def units(agent_dir: str, calendar: str) -> tuple[str, str]:
    service = """# written by studio-cluster: one scheduled Arbiter snapshot backup (see backup-job.json)
[Unit]
Description=studio-cluster scheduled snapshot backup
After=network-online.target

[Service]
Type=oneshot
ExecStart=%s %s backup-scheduled
StandardInput=file:%s
StandardOutput=append:%s
StandardError=append:%s
""" % (sys.executable, agent_dir, JOB_CONF, LOG, LOG)
    timer = """# written by studio-cluster: when the scheduled Arbiter snapshot backups run
[Unit]
Description=studio-cluster scheduled snapshot backups

[Timer]
OnCalendar=%s
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
""" % calendar
    return service, timer


def cron_line(agent_dir: str, cron: str) -> str:
    return ("# written by studio-cluster: scheduled Arbiter snapshot backups (see %s)\n"
            "SHELL=/bin/sh\n%s root %s %s backup-scheduled < %s >> %s 2>&1\n"
            % (JOB_CONF, cron, sys.executable, agent_dir, JOB_CONF, LOG))


def ensure_schedule(job: dict[str, Any] | None, manager: str, agent_dir: str) -> str:
    """Install (``job``) or remove (None) the schedule; returns what is in place now, one phrase."""
    systemd = manager == "systemd"
    unit_dir = "/etc/systemd/system"
    if not job:
        removed = False
        if systemd and os.path.exists(os.path.join(unit_dir, TIMER)):
            _systemctl("disable", "--now", TIMER)
            removed = True
        for path in (os.path.join(unit_dir, TIMER), os.path.join(unit_dir, SERVICE), CRON_FILE, JOB_CONF):
            if os.path.exists(path):
                os.unlink(path)
                removed = True
        if removed and systemd:
            _systemctl("daemon-reload")
        return "no schedule"
    _write_if_changed(JOB_CONF, json.dumps(job, indent=1, sort_keys=True), 0o600)
    if systemd:
        service, timer = units(agent_dir, job["calendar"])
        changed = _write_if_changed(os.path.join(unit_dir, SERVICE), service, 0o644)
        changed = _write_if_changed(os.path.join(unit_dir, TIMER), timer, 0o644) or changed
        if changed:
            _systemctl("daemon-reload")
        _systemctl("enable", TIMER)
        _systemctl("restart" if changed else "start", TIMER)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(CRON_FILE)
        return "systemd timer %s (%s)" % (TIMER, job["calendar"])
    _write_if_changed(CRON_FILE, cron_line(agent_dir, job["cron"]), 0o644)
    return "cron %s (%s)" % (CRON_FILE, job["cron"])
