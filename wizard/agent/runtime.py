"""The node agent: runs ON a node (python3 >= 3.9, stdlib + the redis-py the zipapp bundles).

The wizard launches one agent per node at once.  Each registers its node's Galera state in Redis,
heartbeats with a TTL, and runs the same pure election (:mod:`wizard.agent.election`) on the same
registered states, so the nodes agree on who bootstraps without a human.  The winner fences itself
with a Redis lock and an INCR token before it starts a new Primary Component; everyone else waits for
that Primary and joins; garbd joins last.  Every step is an event on a Redis stream the wizard follows.

Commands (the config, secrets included, always arrives as JSON on stdin, never in argv):
  bootstrap   take part in a coordinated bootstrap/recovery; exits 0 when this node is done
  daemon      the long-running side: health endpoint (Studio nodes) + Redis heartbeat of the node state
  state       print this node's state as JSON
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.server
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from wizard.agent import election, sst_choice
from wizard.agent.grastate import (
    GraState,
    GraStateError,
    classify_datadir,
    parse_grastate,
    parse_recovered_position,
    render_grastate,
    set_safe_to_bootstrap,
)
from wizard.agent.health import health_verdict, node_verdict
from wizard.agent.membership import is_member, parse_gvwstate_uuid
from wizard.agent.serverargs import garbd_argv, garbd_log, mariadbd_argv, parse_shell_vars
from wizard.agent.studio import Publisher, studio_status

HEARTBEAT_TTL_MS = 6000
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


class AgentError(Exception):
    pass


class Aborted(AgentError):
    """Another agent of this run failed first; the message names it and its own reason, once."""


class Config:
    """The JSON the wizard sends; attribute access with defaults so older wizards stay compatible."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


ABORT_CHECK: Callable[[], None] | None = None  # set by bootstrap(): raises when another agent failed


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.1,
             max_interval: float = 0.5) -> Any:
    """Loop on a condition until a deadline; the error names what was awaited.  The interval backs off
    from 0.1 s to 0.5 s: most waits end fast, and a long one (an SST) must not spawn a SQL client ten
    times a second on the very node that is busy transferring."""
    deadline = time.monotonic() + timeout
    while True:
        if ABORT_CHECK is not None:
            ABORT_CHECK()
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AgentError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)
        interval = min(max_interval, interval * 1.5)


class Node:
    """What this agent can observe and do on its own node."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.name = cfg.node
        self.role = cfg.role
        self.registered_fresh = False  # set by a bootstrap agent once it registered the node as fresh
        self.registered_position = ""  # what its registration's --wsrep-recover found, as galera_recovery prints it
        self.recovered_raw = ""  # the last --wsrep-recover's "Recovered position:" text

    # -- observation ------------------------------------------------------------------------
    def grastate(self) -> election.GraState:
        """The parsed grastate.dat (a missing file reads as zero uuid, seqno -1); raises GraStateError
        or OSError when it cannot be read."""
        path = os.path.join(self.cfg.data_dir, "grastate.dat")
        try:
            with open(path) as fh:
                return parse_grastate(fh.read())
        except FileNotFoundError:
            return parse_grastate("")

    def datadir_kind(self) -> str:
        """empty / system / data (see grastate.classify_datadir); "" when the datadir cannot be read."""
        try:
            with os.scandir(self.cfg.data_dir) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except FileNotFoundError:
            return classify_datadir(None)
        except OSError:
            return ""
        return classify_datadir(entries)

    def pids(self, name: str) -> list[int]:
        """Running daemons named `name`; a short-lived `mariadbd --version` (a check) or
        `--wsrep-recover` is not a running server."""
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
        pids = []
        for p in out.stdout.split():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as fh:
                    args = fh.read().split(b"\0")
            except OSError:
                continue  # gone since pgrep saw it
            if args == [b""]:
                continue  # a zombie: not running
            # --donor: a snapshot backup's own garbd (wizard.backups), never the cluster's Arbiter
            if not any(a in (b"--version", b"--help", b"--wsrep-recover", b"--donor") for a in args):
                pids.append(int(p))
        return pids

    def mariadb_running(self) -> bool:
        return bool(self.pids("mariadbd"))

    def sql(self, statement: str, timeout: float = 10) -> list[list[str]]:
        """Run SQL with the node's client; the statement goes over stdin (never argv, it may hold a
        password), the admin password through a 0600 defaults file in the run dir."""
        argv = ["mariadb"]
        if self.cfg.get("admin_password"):
            path = os.path.join(self.cfg.run_dir, "client.cnf")
            if not os.path.exists(path):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write("[client]\npassword=%s\n" % self.cfg.admin_password)
            argv.append("--defaults-extra-file=%s" % path)
        argv += ["--socket=%s" % self.cfg.socket, "--user=%s" % self.cfg.admin_user, "--batch",
                 "--skip-column-names", "--connect-timeout=3"]
        try:
            p = subprocess.run(argv, input=statement, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return []
        if p.returncode != 0:
            self.last_sql_error = p.stderr.strip()
            return []
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def ensure_sst_user(self) -> None:
        """The least-privilege SST user mariabackup needs; created on the Primary so Galera replicates it.
        Only the password's hash is in the statements, so the password never enters the replication
        stream (galera.cache, binary logs)."""
        user, pw = self.cfg.sst_user, self.cfg.get("sst_password") or ""
        digest = native_password_hash(pw)
        stmt = ("CREATE USER IF NOT EXISTS '%s'@'localhost' IDENTIFIED BY PASSWORD '%s';\n"
                "ALTER USER '%s'@'localhost' IDENTIFIED BY PASSWORD '%s';\n"
                "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '%s'@'localhost';\n"
                "SELECT 'ok';\n") % (user, digest, user, digest, user)
        if self.sql(stmt) != [["ok"]]:
            raise AgentError("creating the SST user failed: %s" % getattr(self, "last_sql_error", "?"))

    def standalone(self) -> bool:
        """mariadbd answers and runs without Galera (wsrep_on=0 or no provider)."""
        rows = self.sql("SELECT @@wsrep_on, @@wsrep_provider")
        return bool(rows) and len(rows[0]) > 1 and (rows[0][0] == "0" or rows[0][1] in ("none", ""))

    def set_sst_auth(self) -> None:
        """The running server's wsrep_sst_auth (a dynamic, node-local variable: not replicated), so a
        rotated password is used by the next SST without a restart."""
        value = "%s:%s" % (self.cfg.sst_user, self.cfg.get("sst_password") or "")
        esc = value.replace("\\", "\\\\").replace("'", "\\'")
        if self.sql("SET GLOBAL wsrep_sst_auth = '%s'; SELECT 'ok';" % esc) != [["ok"]]:
            raise AgentError("setting wsrep_sst_auth failed: %s" % getattr(self, "last_sql_error", "?"))

    def wsrep(self) -> dict[str, str]:
        rows = self.sql("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status','wsrep_cluster_size',"
                        "'wsrep_local_state_comment','wsrep_ready','wsrep_last_committed','wsrep_cluster_state_uuid',"
                        "'wsrep_connected','Uptime')")
        return {r[0].lower(): r[1] if len(r) > 1 else "" for r in rows}

    def recover_position(self) -> tuple[tuple[str, int] | None, str]:
        """`mariadbd --wsrep-recover`: ``((uuid, seqno), "")`` as InnoDB holds it, seqno -1 when InnoDB
        holds no Galera position; ``(None, why)`` when the server could not tell (its own error lines)."""
        # like Debian's galera_recovery: a temp log the mysql user can write (mariadbd drops to it)
        fd, log = tempfile.mkstemp(prefix="wsrep-recover.", suffix=".log")
        os.close(fd)
        try:
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam("mysql")
                os.chown(log, pw.pw_uid, pw.pw_gid)
            try:
                p = subprocess.run([self.cfg.mariadbd, "--user=mysql", "--wsrep-recover", "--log-error=%s" % log],
                                   capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, "mariadbd --wsrep-recover did not run: %s" % exc
            with open(log, errors="replace") as fh:
                text = fh.read()
        finally:
            os.unlink(log)
        pos = parse_recovered_position(text)
        # what galera_recovery would pass on (the text after "Recovered position:", a GTID part included)
        raw = re.findall(r"WSREP: Recovered position:[ \t]*(\S+)[ \t]*$", text, re.MULTILINE)
        self.recovered_raw = raw[-1] if raw and pos is not None else ""
        if pos is not None:
            return pos, ""
        errors = [ln.strip() for ln in (text + "\n" + (p.stderr or "")).splitlines() if "[ERROR]" in ln]
        return None, "mariadbd --wsrep-recover found no position (exit %d)%s" % (
            p.returncode, (": " + " | ".join(errors[-3:])) if errors else "")

    def state(self, recover: bool = False) -> election.NodeState:
        note = ""
        try:
            gs = self.grastate()
        except (GraStateError, OSError, UnicodeError) as exc:  # unreadable: the position must come from InnoDB
            gs, note = GraState(), "grastate.dat unreadable (%s)" % exc
        running = self.mariadb_running() if self.role == "studio" else bool(self.pids("garbd"))
        status: dict[str, str] = self.wsrep() if running and self.role == "studio" else {}
        members = ""
        if status.get("wsrep_cluster_status") == "Primary":
            rows = self.sql("SELECT node_uuid, node_name FROM mysql.wsrep_cluster_members")
            members = ",".join("%s=%s" % (r[0], r[1] if len(r) > 1 else "") for r in rows if r and r[0])
        datadir = self.datadir_kind() if self.role == "studio" else ""
        if running and self.role == "studio" and not status:
            # A server that is starting (crash recovery, an SST), stopping, or dying from a kill answers no SQL:
            # where it stands cannot be read from it, and --wsrep-recover must not run beside it.
            why = (getattr(self, "last_sql_error", "") or "no answer").splitlines()[-1][:200]
            note = "; ".join(x for x in (note, "mariadbd runs but does not answer SQL (%s)" % why) if x)
        recovered: int | None = None
        recovered_uuid = ""
        # Any node whose state file does not say where it is (seqno -1: a crash; zero uuid: Galera zeroes
        # it while DDL runs; missing or unreadable) asks InnoDB.  An empty datadir has nothing to ask.
        if recover and not running and self.role == "studio" and gs.seqno < 0 and datadir != election.DATADIR_EMPTY:
            pos, why = self.recover_position()
            if pos is not None:
                recovered_uuid, recovered = pos
            else:
                note = "; ".join(x for x in (note, why) if x)
        return election.NodeState(
            name=self.name, role=self.role, uuid=gs.uuid, seqno=gs.seqno, safe_to_bootstrap=gs.safe_to_bootstrap,
            recovered_seqno=recovered, running=running,
            cluster_status=status.get("wsrep_cluster_status", ""),
            local_state=status.get("wsrep_local_state_comment", ""),
            heartbeat=time.time(),
            cluster_size=int(status.get("wsrep_cluster_size") or 0),
            last_committed=int(status.get("wsrep_last_committed") or -1),
            recovered_uuid=recovered_uuid, datadir=datadir, note=note[:400], members=members,
        )

    # -- actions ----------------------------------------------------------------------------
    def start_position(self) -> str | None:
        """Debian's galera_recovery prints --wsrep_start_position=uuid:seqno; without it a crashed node
        would start a brand-new cluster UUID (facts.md).  None without asking for a node this run registered
        as fresh (``--wsrep-recover`` found no position, no databases of its own): there is nothing to recover;
        the position this run's registration already read with ``--wsrep-recover`` (the server has not run
        since: the agent holds the node lock) without reading it a second time."""
        if not os.path.exists("/usr/bin/galera_recovery") or self.registered_fresh:
            return None
        if self.registered_position:
            return self.registered_position
        p = subprocess.run(["/usr/bin/galera_recovery"], capture_output=True, text=True, timeout=180)
        m = re.search(r"--wsrep_start_position=(\S+)", p.stdout)
        return m.group(1) if m else None

    def start_mariadb(self, new_cluster: bool, sst_method: str | None = None) -> None:
        """``sst_method``: the SST method this start asks a donor for instead of the configured one (None: the
        configured one); given on the command line, through $MYSQLD_OPTS for Debian's unit (sst_choice)."""
        if self.cfg.manager == "systemd":
            unit = unit_name(self.cfg.mariadb_unit)
            # galera_new_cluster: Debian's way (an environment file the unit reads, then a restart of it);
            # the unit's own galera_recovery passes the start position either way.
            cmd = ["galera_new_cluster", unit] if new_cluster else ["systemctl", "start", unit]
            with sst_method_for_unit(sst_method):
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                why = self.server_errors() or (p.stderr or p.stdout).strip()[-300:]
                # Debian's unit restarts an aborted server (Restart=on-abnormal): a join that fails would be
                # tried again and again, each time wiping this joiner's datadir and desyncing the donor.
                # Stop the unit (that cancels the pending restart) and say so.
                with contextlib.suppress(Exception):
                    systemctl_stop(unit, self.name, 120)
                raise AgentError("%s failed on %s: %s; the unit was stopped so that systemd does not retry the "
                                 "same %s over and over" % (" ".join(cmd), self.name, why,
                                                           "bootstrap" if new_cluster else "join"))
            systemctl("enable", unit)  # configured and in the cluster: a reboot brings it back, and it rejoins
            return
        argv = mariadbd_argv(self.cfg.mariadbd, self.start_position(), new_cluster)
        spawn(argv + (["--wsrep_sst_method=%s" % sst_method] if sst_method else []), DIRECT_LOG)

    def stop_mariadb(self) -> None:
        """A clean shutdown (SIGTERM, as systemd does), waited for."""
        if self.cfg.manager == "systemd":
            systemctl_stop(unit_name(self.cfg.mariadb_unit), self.name, 300)
        for pid in self.pids("mariadbd"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        wait_for("mariadbd on %s to stop" % self.name, lambda: not self.mariadb_running(), 300)

    def stop_garbd(self, leave: bool = True) -> None:
        """Stop the cluster's garbd (never a backup's).  ``leave`` False when no data node is Primary (one is
        about to bootstrap): garbd asked to stop says goodbye first and, with its peers dead, waits
        evs.suspect_timeout (5 s on the lab) for answers nobody sends.  It holds no data and its gvwstate.dat is
        removed at every start, so it is killed (SIGKILL) instead."""
        if self.cfg.manager == "systemd":
            unit = unit_name(self.cfg.garbd_unit)
            if not leave:
                with contextlib.suppress(AgentError, subprocess.TimeoutExpired):
                    systemctl("kill", "--signal=SIGKILL", unit, timeout=30)
            systemctl_stop(unit, self.name, 60)
            if not leave:  # killed: the unit is "failed"; it was stopped on purpose
                with contextlib.suppress(AgentError, subprocess.TimeoutExpired):
                    systemctl("reset-failed", unit, timeout=30)
        for pid in self.pids("garbd"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if leave else signal.SIGKILL)
        wait_for("garbd to stop", lambda: not self.pids("garbd"), 20)

    def unit_waiting_for_primary(self, coord: Coordination) -> str:
        """systemd restarts a crashed mariadbd (Debian's Restart=on-abnormal, after RestartSec), and with no
        Primary Component left it waits in ``activating`` for one to join (and ignores SIGTERM: a stop leaves
        it ``deactivating`` for up to the unit's TimeoutStopSec): it answers no SQL, has joined nothing and
        holds nothing new, but while it runs its position cannot be recovered, and a restart still pending
        would start it under this agent's feet.  When the unit is in one of those states and no other data
        node is Primary, say why (the caller stops it with :meth:`stop_waiting_unit`); else ""."""
        if self.cfg.manager != "systemd" or self.role != "studio":
            return ""
        unit = unit_name(self.cfg.mariadb_unit)
        p = subprocess.run(["systemctl", "show", "-p", "ActiveState", "-p", "SubState", unit], capture_output=True,
                           text=True, timeout=20)
        props = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
        active, sub = props.get("ActiveState", ""), props.get("SubState", "")
        if sub == "auto-restart":
            why = "systemd is about to restart %s after a crash (RestartSec)" % unit
        elif active in ("activating", "deactivating") and self.mariadb_running() and not self.wsrep():
            why = ("%s is %s and answers no SQL: systemd restarted it after a crash and it waits for a Primary "
                   "Component to join" % (unit, active))
        else:
            return ""
        others = [n for n in self.cfg.data_nodes if n != self.name]
        if primary_members(coord.live_states(others)):
            return ""  # a Primary exists: this server is (about to be) joining it; leave it be
        return why + "; no data node is Primary, so stopping it (it joined nothing) to let InnoDB tell its position"

    def stop_waiting_unit(self) -> None:
        """Stop a unit found by :meth:`unit_waiting_for_primary`: a server still waiting to join ignores
        SIGTERM until it has joined, so the stop job gets a SIGKILL after it (InnoDB is crash-safe, and the
        queued stop keeps systemd from restarting it)."""
        unit = unit_name(self.cfg.mariadb_unit)
        subprocess.run(["systemctl", "stop", "--no-block", unit], capture_output=True, timeout=30)
        subprocess.run(["systemctl", "kill", "--signal=SIGKILL", unit], capture_output=True, timeout=30)
        wait_for("%s on %s to stop" % (unit, self.name), lambda: not self.mariadb_running(), 60)

    def error_log(self) -> str:
        """Where the server's error log really goes: the file its config names (``log_error``, read with
        ``mariadbd --print-defaults`` so every included file counts), else "" (stderr: the direct start's
        /var/log/mysql/mariadbd.out, or the unit's journal under systemd)."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            p = subprocess.run([self.cfg.mariadbd, "--print-defaults"], capture_output=True, text=True, timeout=20)
            return configured_error_log(p.stdout, self.cfg.data_dir)
        return ""

    def server_errors(self, count: int = 3) -> str:
        """The server's last [ERROR] lines of its last start (the fatal one first): from the file
        ``log_error`` names, else the journal of its unit under systemd, else the log a direct start writes."""
        configured = self.error_log()
        if configured:
            return last_errors(configured, count=count)
        if self.cfg.manager != "systemd":
            return last_errors(DIRECT_LOG, count=count)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            p = subprocess.run(["journalctl", "-u", unit_name(self.cfg.mariadb_unit), "-n", "300", "--no-pager",
                                "-o", "cat"], capture_output=True, text=True, timeout=20)
            return error_lines(p.stdout.splitlines(), count)
        return ""

    def garbd_workdir(self) -> str:
        return read_shell_vars(self.cfg.garb_config).get("WORK_DIR") or "/var/lib/garbd"

    def garbd_uuid(self) -> str:
        """This garbd's identity in the group (``my_uuid`` of gvwstate.dat in its work dir), "" if unknown."""
        try:
            with open(os.path.join(self.garbd_workdir(), "gvwstate.dat"), errors="replace") as fh:
                return parse_gvwstate_uuid(fh.read())
        except OSError:
            return ""

    def start_garbd(self) -> None:
        # A new incarnation gets a new identity: a stale gvwstate.dat would make it take over the dead
        # one's (facts.md), and the dead one may still be counted until it is evicted.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.garbd_workdir(), "gvwstate.dat"))
        if self.cfg.manager == "systemd":
            unit = unit_name(self.cfg.garbd_unit)
            install_garbd_drop_in(unit, self.garbd_workdir())
            p = subprocess.run(["systemctl", "start", unit], capture_output=True, text=True, timeout=180)
            if p.returncode != 0:
                raise AgentError("systemctl start %s failed on %s: %s" % (unit, self.name, p.stderr.strip()))
            systemctl("enable", unit)
            return
        env = read_shell_vars(self.cfg.garb_config)
        if env.get("WORK_DIR"):
            os.makedirs(env["WORK_DIR"], exist_ok=True)
        log = garbd_log(env)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        spawn(garbd_argv(self.cfg.garbd, env, self.cfg.cluster_name), log + ".out")


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form: ``*`` + upper-case hex of SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()  # noqa: S324


def read_shell_vars(path: str) -> dict[str, str]:
    """Read a Debian /etc/default file of VAR=value lines without executing it."""
    try:
        with open(path) as fh:
            return parse_shell_vars(fh.read())
    except FileNotFoundError:
        return {}


def spawn(argv: list[str], log: str) -> None:
    """Start a detached daemon: own session, stdio away from our SSH channel (or the call would hang)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        subprocess.Popen(argv, stdin=devnull, stdout=out, stderr=out, start_new_session=True, close_fds=True)


@contextlib.contextmanager
def sst_method_for_unit(method: str | None) -> Any:
    """While in the block, the manager's $MYSQLD_OPTS (Debian's mariadb.service passes it to mariadbd) also
    carries ``--wsrep_sst_method=METHOD``; its former value (or its absence) comes back after, as
    galera_new_cluster does with _WSREP_NEW_CLUSTER.  Nothing happens for None."""
    if not method:
        yield
        return
    shown = subprocess.run(["systemctl", "show-environment"], capture_output=True, text=True, timeout=30).stdout
    before = next((ln.partition("=")[2] for ln in shown.splitlines() if ln.startswith("MYSQLD_OPTS=")), None)
    systemctl("set-environment", "MYSQLD_OPTS=%s" % " ".join(x for x in (before, "--wsrep_sst_method=" + method) if x))
    try:
        yield
    finally:
        if before is None:
            systemctl("unset-environment", "MYSQLD_OPTS")
        else:
            systemctl("set-environment", "MYSQLD_OPTS=%s" % before)


def unit_name(name: str) -> str:
    """A systemd unit name with its type (``mariadb`` -> ``mariadb.service``)."""
    return name if "." in name else name + ".service"


def systemctl(*args: str, timeout: float = 120) -> None:
    """Run systemctl; a failure is an AgentError with its own message."""
    p = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AgentError("systemctl %s failed: %s" % (" ".join(args), (p.stderr or p.stdout).strip()[-300:]))


def systemctl_stop(unit: str, node: str, timeout: float) -> None:
    """``systemctl stop`` waited for up to `timeout` s; a stop that takes longer is an AgentError."""
    try:
        subprocess.run(["systemctl", "stop", unit], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AgentError("systemctl stop %s on %s did not finish within %.0fs (see journalctl -u %s)"
                         % (unit, node, timeout, unit)) from None


def write_if_changed(path: str, text: str, mode: int = 0o644) -> bool:
    """Write a root-owned file atomically unless it already holds `text`; True when it was written."""
    with contextlib.suppress(OSError), open(path) as fh:
        if fh.read() == text and (os.stat(path).st_mode & 0o7777) == mode:
            return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".studio-cluster.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def install_garbd_drop_in(unit: str, workdir: str) -> None:
    """A drop-in for Debian's garb.service: every start, also one systemd makes at boot, is a new
    incarnation with a new identity (a stale gvwstate.dat would take over the dead one's)."""
    text = ("# written by studio-cluster: every garbd start is a new incarnation\n[Service]\n"
            "ExecStartPre=-+/bin/rm -f %s\n" % os.path.join(workdir, "gvwstate.dat"))
    if write_if_changed("/etc/systemd/system/%s.d/studio-cluster.conf" % unit, text):
        systemctl("daemon-reload")


# -- Redis coordination --------------------------------------------------------------------------
class Coordination:
    def __init__(self, cfg: Config) -> None:
        from wizard.agent import redisconn  # redis-py is bundled in the zipapp

        self.cfg = cfg
        self.r = redisconn.connect(cfg.data)  # the master, through Sentinel when configured
        self.prefix = "%s:%s" % (cfg.key_prefix, cfg.cluster_name)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix,) + parts)

    def event(self, node: str, step: str, state: str, message: str = "", **extra: Any) -> None:
        fields = {"run": self.cfg.get("run_id", ""), "node": node, "step": step, "state": state,
                  "message": message, "ts": "%.3f" % time.time()}
        fields.update({k: str(v) for k, v in extra.items()})
        self.r.xadd(self.key("events"), fields,  # type: ignore[arg-type]
                    maxlen=5000, approximate=True)

    def publish_state(self, st: election.NodeState, kind: str = "node") -> None:
        """kind "node": a bootstrap agent's registration, the only input of the election.
        kind "heartbeat": the long-running daemon's view, read by status and the monitor; kept apart so
        a daemon can never stand in for an agent that has not registered (or erase its recovered seqno).
        Registrations are scoped to the run: a registration an earlier run left behind (it lives one TTL
        after its agent exits) must never speak for a node in this election."""
        key = self.state_key(kind, st.name)
        pipe = self.r.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=st.to_dict())
        pipe.pexpire(key, HEARTBEAT_TTL_MS)
        pipe.execute()

    def state_key(self, kind: str, name: str) -> str:
        if kind == "node":
            return self.key("run", self.cfg.get("run_id", ""), "node", name)
        return self.key(kind, name)

    def states(self, names: list[str], kind: str = "node") -> dict[str, election.NodeState]:
        pipe = self.r.pipeline()
        for n in names:
            pipe.hgetall(self.state_key(kind, n))
        out = {}
        for n, raw in zip(names, pipe.execute()):
            if raw:
                out[n] = election.NodeState.from_dict(raw)
        return out

    def live_states(self, names: list[str]) -> dict[str, election.NodeState]:
        """This run's registrations, else the daemons' heartbeats: for waits that only need to know
        what the data nodes are doing now (the Arbiter waiting for them), not for the election."""
        out = self.states(names, "heartbeat")
        out.update(self.states(names))
        return out


class Heartbeat(threading.Thread):
    """Publishes this node's state every second with a TTL, so a dead agent disappears by itself."""

    def __init__(self, node: Node, coord: Coordination, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="heartbeat")
        self.node, self.coord, self.interval = node, coord, interval
        self.stop = threading.Event()
        self.extra: dict[str, Any] = {}
        self.last: election.NodeState | None = None

    def beat(self, st: election.NodeState | None = None) -> election.NodeState:
        st = st or self.node.state()
        if self.extra:
            for k, v in self.extra.items():
                setattr(st, k, v)
        self.last = st
        self.coord.publish_state(st)
        return st

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self.beat()


# -- bootstrap ------------------------------------------------------------------------------------
def node_lock(run_dir: str) -> Any:
    """One agent per node at a time: a second replay's agent waits here, then sees a Primary and no-ops."""
    os.makedirs(run_dir, exist_ok=True)
    fh = open(os.path.join(run_dir, "agent.lock"), "w")  # noqa: SIM115  (held for the process lifetime)
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def primary_members(states: dict[str, election.NodeState]) -> list[str]:
    return [n for n, s in states.items() if s.running and s.cluster_status == "Primary"]


def bootstrap(cfg: Config) -> dict[str, Any]:
    lock = node_lock(cfg.run_dir)
    node = Node(cfg)
    coord = Coordination(cfg)
    ev = lambda step, state, msg="", **kw: coord.event(node.name, step, state, msg, **kw)  # noqa: E731
    global ABORT_CHECK
    abort_key = coord.key("abort", cfg.get("run_id", ""))

    def check_abort() -> None:
        reason = coord.r.get(abort_key)
        if reason and not str(reason).startswith(node.name + " failed:"):
            raise Aborted("stopped because %s" % reason)

    ABORT_CHECK = check_abort
    keeper = LeaseKeeper(coord, str(cfg.get("run_id", "")).split("-", 1)[0])  # the lease names the pipeline run
    keeper.start()
    ev("agent", "started", "agent started (pid %d)" % os.getpid())
    stale = clear_check_listeners()
    if stale:
        ev("agent", "running", "stopped %d port-check listener(s) an interrupted run left holding the cluster's "
           "ports (pid %s)" % (len(stale), ", ".join(map(str, stale))))
    try:
        if node.role == "arbiter":
            result = bootstrap_arbiter(cfg, node, coord, ev)
        else:
            result = bootstrap_data(cfg, node, coord, ev)
        ev("agent", "finished", "agent finished: %s" % (result.get("action") or "done"),
           action=result.get("action") or "")
        return result
    except Aborted as exc:
        ev("agent", "failed", str(exc))
        raise
    except Exception as exc:
        ev("agent", "failed", str(exc))
        with contextlib.suppress(Exception):  # tell the other agents of this run to stop waiting: the first
            coord.r.set(abort_key, "%s failed: %s" % (node.name, exc), ex=600, nx=True)  # cause, never nested
        raise
    finally:
        keeper.stop.set()
        lock.close()


class LeaseKeeper(threading.Thread):
    """Keeps the run's lease (``<prefix>:<cluster>:run-lease``, held by the front end that started the run)
    alive while this agent works: the agent runs detached, so a front end that dies (a closed terminal, a
    kill) leaves a lease that lasts until the run's last agent has exited plus the lease's TTL, and no
    second run starts beside agents still at work.  Renews only a lease that names this run."""

    RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
             "return 0")

    def __init__(self, coord: Coordination, run_id: str, ttl_ms: int = 30000) -> None:
        super().__init__(daemon=True, name="lease")
        self.coord, self.run_id, self.ttl_ms = coord, run_id, ttl_ms
        self.stop = threading.Event()

    def run(self) -> None:
        while self.run_id and not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.coord.r.eval(self.RENEW, 1, self.coord.key("run-lease"), self.run_id, str(self.ttl_ms))
            self.stop.wait(5)


CHECK_LISTENER_MARK = b"# studio-cluster check listener"  # wizard.checks.network.LISTENER_MARK


def clear_check_listeners() -> list[int]:
    """Kill the port-check listeners a run left behind (its front end died before it could stop them): they
    hold the Galera, IST, SST and SQL ports for up to a minute, so mariadbd (and ``--wsrep-recover``) could not
    bind them.  Returns the pids killed."""
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(CHECK_LISTENER_MARK) for a in argv):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    return killed


def bootstrap_data(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None]) -> dict[str, Any]:
    hb = Heartbeat(node, coord)
    ev("register", "running", "reading grastate.dat and server state")
    waiting = node.unit_waiting_for_primary(coord)  # systemd only: restarted after a crash, joined nothing
    if waiting:
        ev("register", "running", waiting)
        node.stop_waiting_unit()
    me = node.state(recover=True)
    if me.running and node.standalone():
        # What Debian's package leaves: a server without Galera.  It commits nothing to any cluster, so a
        # clean stop loses nothing; then InnoDB tells what it holds and the election decides whose data stays.
        # Only then is the node published: the election must never see the standalone server.
        ev("register", "running", "mariadbd runs standalone (wsrep_on=0): stopping it cleanly to start it as a "
           "Galera node")
        node.stop_mariadb()
        me = node.state(recover=True)
    me = settle(cfg, node, me, ev)
    node.registered_fresh = me.is_fresh and not me.running  # its start needs no galera_recovery (start_position)
    if not me.running and me.recovered_seqno is not None and me.recovered_seqno >= 0 and node.recovered_raw \
            and me.recovered_uuid and me.recovered_uuid != ZERO_UUID:
        node.registered_position = node.recovered_raw
    with contextlib.suppress(Exception):  # what a joiner needs to pick its SST method (sst_choice)
        sst_choice.publish(coord.r, coord.prefix, str(cfg.get("run_id", "")), node.name, sst_choice.facts(cfg.data_dir))
    me = hb.beat(me)
    ev("register", "done", "%s: uuid %s seqno %s safe_to_bootstrap %s recovered %s:%s datadir %s running %s %s%s" % (
        me.describe(), me.uuid, me.seqno, int(me.safe_to_bootstrap), me.recovered_uuid or "-", me.recovered_seqno,
        me.datadir or "?", me.running, me.cluster_status, (" (%s)" % me.note) if me.note else ""),
       seqno=me.seqno, recovered=me.recovered_seqno)
    if me.running and "inconsistent" in (me.local_state + " " + me.cluster_status).lower():
        raise AgentError("%s is Inconsistent: Galera found its data diverged from the cluster's (its error log says "
                         "where); it is never retried blindly: stop it, move its datadir aside and let it rejoin by a "
                         "full SST, or restore it from a backup" % node.name)
    hb.extra = {"recovered_seqno": me.recovered_seqno, "recovered_uuid": me.recovered_uuid, "note": me.note}
    hb.start()
    try:
        if me.running and me.cluster_status == "Primary" and me.local_state == "Synced":
            ev("done", "done", "already Primary and Synced: nothing to do", action="none")
            wait_cluster_complete(cfg, node, ev)
            return {"node": node.name, "action": "none"}
        decision = elect(cfg, node, coord, ev)
        if decision.kind == election.BOOTSTRAP and decision.node == node.name:
            token = try_bootstrap(cfg, node, coord, ev, hb, me, new_cluster=decision.new_cluster)
            if token is not None:
                wait_cluster_complete(cfg, node, ev)
                return {"node": node.name, "action": "bootstrap", "token": token}
        join(cfg, node, coord, ev, hb, new_cluster=decision.new_cluster or formed_new_cluster(cfg, coord))
        wait_cluster_complete(cfg, node, ev)
        return {"node": node.name, "action": "join"}
    finally:
        hb.stop.set()
        hb.join(timeout=2)
        with contextlib.suppress(Exception):
            hb.beat()


def answering(st: election.NodeState) -> bool:
    """The node's state can be read: mariadbd is stopped, or it runs and answers SQL (a cluster status)."""
    return not st.running or st.role != "studio" or bool(st.cluster_status)


def settle(cfg: Config, node: Node, me: election.NodeState, ev: Callable[..., None]) -> election.NodeState:
    """Wait up to ``settle_timeout`` s (default 30) for a mariadbd that runs but answers no SQL to answer or to
    exit, and return the state read then.

    Such a server is starting (crash recovery, an SST) or going away (a shutdown, a kill still being delivered).
    Registered as it is, it is a node whose position cannot be told, and the election refuses to bootstrap; once
    it has exited, ``--wsrep-recover`` reads its position from InnoDB.  A server still silent at the deadline is
    registered as it is (the refusal names it)."""
    if answering(me):
        return me
    limit = float(cfg.get("settle_timeout", 30))
    ev("register", "running", "%s: waiting up to %.0fs for it to answer or exit" % (me.note or "mariadbd is silent",
                                                                                 limit))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ABORT_CHECK is not None:
            ABORT_CHECK()
        time.sleep(0.5)
        me = node.state(recover=True)
        if answering(me):
            ev("register", "running", "mariadbd %s" % ("answers now" if me.running else "has exited; position read "
                                                                                      "from InnoDB"))
            return me
    return me


def elect(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None]) -> election.Decision:
    """Run the shared election on the registered states until it says something other than WAIT."""
    ev("elect", "running", "waiting for every data node to register")
    deadline = time.monotonic() + float(cfg.get("wait_timeout", 60))
    last_reason = ""
    while True:
        if ABORT_CHECK is not None:
            ABORT_CHECK()
        states = coord.states(cfg.data_nodes)
        decision = election.decide(states, cfg.data_nodes, cfg.preferred, cfg.get("force"))
        if decision.kind != election.WAIT:
            ev("elect", "done", decision.reason, decision=decision.kind, winner=decision.node or "")
            if decision.kind == election.REFUSE:
                raise AgentError("refusing to bootstrap: " + decision.reason)
            return decision
        if decision.reason != last_reason:
            ev("elect", "waiting", decision.reason)
            last_reason = decision.reason
        if time.monotonic() >= deadline:
            missing = ", ".join(decision.missing)
            raise AgentError(
                "timed out after %ss waiting for %s to register; start its agent, or pass --force-bootstrap NODE "
                "to bootstrap without it" % (cfg.get("wait_timeout", 60), missing))
        time.sleep(0.2)


def peers_listening(cfg: Config, node: Node, names: list[str] | None = None) -> list[str]:
    """Last line of defence: a peer whose Galera port answers may already hold a Primary Component."""
    busy = []
    for name, addr in cfg.addresses.items():
        if name == node.name or name not in (cfg.data_nodes if names is None else names):
            continue
        with contextlib.suppress(OSError), socket.create_connection((addr, int(cfg.galera_port)), timeout=1):
            busy.append(name)
    return busy


def arbiters(cfg: Config) -> list[str]:
    return [n for n in cfg.addresses if n not in cfg.data_nodes]


# Compare-and-extend: true only while this agent holds the bootstrap lock AND its fencing token is the
# latest ever issued.  Checked atomically in Redis right before each irreversible step.
FENCE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(redis.call('get', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('pexpire', KEYS[1], ARGV[3])
return 1
"""


class Fence:
    """The bootstrap lock (SET NX PX) and fencing token (INCR) of one agent.  ``check(step)`` raises
    unless the lock is still ours and no later token was issued: an agent that was paused (SIGSTOP, a
    stalled VM) past its lock's TTL while another took over can never start a second Primary Component."""

    def __init__(self, cfg: Config, node: Node, coord: Coordination) -> None:
        self.cfg, self.coord = cfg, coord
        self.lock_key, self.token_key = coord.key("bootstrap-lock"), coord.key("fencing-token")
        self.owner = "%s/%s/%d" % (node.name, cfg.get("run_id", ""), os.getpid())
        self.ttl_ms = int(float(cfg.get("lock_ttl", 120)) * 1000)
        self.token = 0

    def acquire(self) -> bool:
        # A retried SET NX whose first reply was lost answers "not set": the lock may be our own.
        if not self.coord.r.set(self.lock_key, self.owner, nx=True, px=self.ttl_ms) and self.holder() != self.owner:
            return False
        self.token = int(self.coord.r.incr(self.token_key))  # type: ignore[arg-type]
        # Best effort: have a replica hold the lock and token before acting on them, so a Sentinel failover
        # right now is less likely to lose them (the fence check still refuses if it does).
        with contextlib.suppress(Exception):
            self.coord.r.wait(1, 1000)
        return True

    def holder(self) -> str:
        return str(self.coord.r.get(self.lock_key) or "nobody")

    def check(self, step: str) -> None:
        ok = self.coord.r.eval(FENCE, 2, self.lock_key, self.token_key, self.owner, str(self.token), str(self.ttl_ms))
        if not ok:
            raise AgentError("not %s: this agent lost the bootstrap lock (fencing token %d is no longer the latest; "
                             "lock held by %s); another agent took over" % (step, self.token, self.holder()))

    def release(self) -> None:
        self.coord.r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
                          "return 0", 1, self.lock_key, self.owner)


def try_bootstrap(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None],
                  hb: Heartbeat, me: election.NodeState, new_cluster: bool = False) -> int | None:
    """Fence, then start a new Primary Component (or, on a running non-Primary node, re-form one with
    pc.bootstrap).  None = someone else won.  ``new_cluster``: the election's ``Decision.new_cluster`` (every data
    node fresh, or the only node with data keeps it as a new cluster); recorded with the decision for the joiners
    (``formed_new_cluster``)."""
    fence = Fence(cfg, node, coord)
    if not fence.acquire():
        ev("bootstrap", "skipped", "bootstrap lock held by %s: joining instead" % fence.holder())
        return None
    token = fence.token
    try:
        ev("bootstrap", "running", "bootstrap lock taken (fencing token %d)" % token, token=token, pid=os.getpid())
        if cfg.get("test_stop_after_lock"):  # test hook: freeze here, as a stalled agent would
            os.kill(os.getpid(), signal.SIGSTOP)
        fence.check("going on with the bootstrap")
        states = coord.states(cfg.data_nodes)
        if primary_members(states):
            members = ", ".join(primary_members(states))
            ev("bootstrap", "skipped", "a Primary Component appeared (%s): joining" % members)
            return None
        # The Arbiter's view: a garbd left as a Primary Component of one (the data nodes left cleanly) would
        # merge with a new one and reverse history.  Its agent stops it when no data node is Primary.
        arb = arbiters(cfg)
        if arb and peers_listening(cfg, node, arb):
            ev("bootstrap", "waiting",
               "waiting for garbd on %s to stop before a new Primary Component" % ", ".join(arb))
            try:
                wait_for("garbd on %s to stop (it may hold a Primary Component of its own)" % ", ".join(arb),
                         lambda: not peers_listening(cfg, node, arb), float(cfg.get("arbiter_stop_timeout", 40)))
            except Aborted:
                raise
            except AgentError as exc:
                raise AgentError("refusing to bootstrap: %s; stop garbd on the Arbiter and run again" % exc) from None
        running_peers = {n for n, s in states.items() if n != node.name and s.running and not s.is_primary}
        busy = [n for n in peers_listening(cfg, node) if n not in running_peers or not me.running]
        if busy:
            raise AgentError("refusing to bootstrap: Galera already listens on %s; a Primary Component may exist"
                             % ", ".join(busy))
        coord.r.hset(coord.key("decision"), mapping={"node": node.name, "token": token, "ts": "%.3f" % time.time(),
                                                     "run": cfg.get("run_id", ""),
                                                     "new_cluster": "1" if new_cluster else "0"})
        hb.extra["cluster_status"] = "bootstrapping"  # peers must not see this Primary before the SST user exists
        if me.running:
            fence.check("re-forming a Primary Component")
            ev("bootstrap", "running", "no Primary Component anywhere: re-forming one on the running %s with "
               "pc.bootstrap (fencing token %d)" % (node.name, token), token=token)
            # Galera refuses (ERROR 1210, "Cluster configuration change in progress") while a healed link is
            # merging the group; that passes within seconds, so the request is repeated until a deadline.
            deadline = time.monotonic() + float(cfg.get("pc_bootstrap_timeout", 20))
            while node.sql("SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'; SELECT 'ok';") != [["ok"]]:
                if time.monotonic() >= deadline:
                    raise AgentError("pc.bootstrap on %s failed: %s"
                                     % (node.name, getattr(node, "last_sql_error", "?")))
                time.sleep(0.5)
                fence.check("re-forming a Primary Component")
        else:
            fence.check("setting safe_to_bootstrap")
            position_grastate(cfg, node, me, ev, token)
            fence.check("starting a new Primary Component")
            ev("bootstrap", "running", "starting mariadbd --wsrep-new-cluster (fencing token %d)" % token,
               token=token, new_cluster="1")
            node.start_mariadb(new_cluster=True)
        wait_for("%s to become Primary and Synced" % node.name,
                 lambda: primary_synced(node), float(cfg.get("start_timeout", 120)))
        node.ensure_sst_user()
        ev("bootstrap", "running", "SST user %s ensured" % cfg.sst_user)
        hb.extra.pop("cluster_status", None)
        hb.beat()
        coord.r.set(coord.key("primary"), node.name)
        ev("bootstrap", "done", "Primary Component formed on %s" % node.name, token=token)
        return token
    finally:
        fence.release()  # only our own lock (compare-and-delete)


def position_grastate(cfg: Config, node: Node, me: election.NodeState, ev: Callable[..., None], token: int) -> None:
    """Make grastate.dat say what the election relied on: the recovered position when the file had none
    (zeroed during DDL, missing, unreadable), and safe_to_bootstrap: 1."""
    path = os.path.join(cfg.data_dir, "grastate.dat")
    if me.seqno < 0 and me.recovered_seqno is not None and me.recovered_seqno >= 0 and not me.has_zero_uuid:
        text = render_grastate(me.galera_uuid, me.recovered_seqno, True)
        atomic_write(path, text, like=cfg.data_dir)
        ev("bootstrap", "running", "wrote grastate.dat %s:%d safe_to_bootstrap: 1 (position recovered from InnoDB)"
           % (me.galera_uuid, me.recovered_seqno), token=token)
        return
    if not os.path.exists(path):
        return
    try:
        safe = node.grastate().safe_to_bootstrap
    except (GraStateError, OSError, UnicodeError):
        safe = False
    if not safe:
        with open(path, errors="replace") as fh:
            text = fh.read()
        try:
            parse_grastate(text)
        except GraStateError:
            text = render_grastate(me.galera_uuid, -1, True)
        atomic_write(path, set_safe_to_bootstrap(text))
        ev("bootstrap", "running", "set safe_to_bootstrap: 1 (elected as most advanced node)", token=token)


DIRECT_LOG = "/var/log/mysql/mariadbd.out"  # a direct start's stdout and stderr


def configured_error_log(print_defaults: str, datadir: str) -> str:
    """The error log file named by ``mariadbd --print-defaults`` output ("" when none: errors go to stderr).
    A bare ``log_error`` means ``<hostname>.err``; a name without an extension gets ``.err``; a relative
    one lives in the datadir, as the server resolves them."""
    path: str | None = None
    for arg in print_defaults.split():
        m = re.match(r"--(?:loose[-_])?log[-_]error(?:=(.*))?$", arg)
        if m:
            path = m.group(1) or ""
        elif re.match(r"--(?:skip|disable)[-_]log[-_]error$", arg):
            path = None
    if path is None:
        return ""
    if not path:
        path = socket.gethostname() + ".err"
    if "." not in os.path.basename(path):
        path += ".err"
    return path if os.path.isabs(path) else os.path.join(datadir, path)


START_MARK = re.compile(r"starting as process \d+|Starting MariaDB .* as process \d+")
BORING = ("[ERROR] Aborting",)


def error_lines(lines: list[str], count: int = 3) -> str:
    """The [ERROR] lines of the last start in `lines` (a server log): its first fatal one (the reason), then
    the last others, at most `count`, "Aborting" left out; " | "-joined."""
    start = max((i for i, ln in enumerate(lines) if START_MARK.search(ln)), default=0)
    errors = [ln.strip() for ln in lines[start:] if "[ERROR]" in ln and not any(b in ln for b in BORING)]
    if not errors:
        return ""
    fatal = next((ln for ln in errors if "fatal" in ln.lower()), None)
    if fatal is None:
        return " | ".join(errors[-count:])
    rest = [ln for ln in errors if ln != fatal][-(count - 1):] if count > 1 else []
    return " | ".join([fatal, *rest])


def last_errors(path: str = DIRECT_LOG, count: int = 3) -> str:
    """The server's [ERROR] lines of its last start in the log at `path` (see :func:`error_lines`), so a
    failed start says why without a trip to the node; "" when the file cannot be read."""
    try:
        with open(path, errors="replace") as fh:
            lines = fh.readlines()[-2000:]
    except OSError:
        return ""
    return error_lines(lines, count)


def primary_synced(node: Node) -> bool:
    if not node.mariadb_running():
        why = node.server_errors()
        where = node.error_log() or ("journalctl -u %s" % unit_name(node.cfg.mariadb_unit)
                                     if node.cfg.manager == "systemd" else DIRECT_LOG)
        raise AgentError("mariadbd on %s exited%s" % (node.name, (": " + why) if why else "; see " + where))
    w = node.wsrep()
    return w.get("wsrep_cluster_status") == "Primary" and w.get("wsrep_local_state_comment") == "Synced"


def formed_new_cluster(cfg: Config, coord: Coordination) -> bool:
    """This run's bootstrap formed a brand-new cluster: the decision its bootstrapping agent recorded names this
    run and says so (``recorded_new_cluster``).  A joiner whose own election came after that bootstrap (it saw
    the Primary and was told to join) learns it here; the cluster served nobody before this run either way."""
    try:
        decision: dict[str, str] = coord.r.hgetall(coord.key("decision"))  # type: ignore[assignment]
        return recorded_new_cluster(decision, str(cfg.get("run_id", "")))
    except Exception:  # unknown: keep the configured method
        return False


def recorded_new_cluster(decision: dict[str, str], run_id: str) -> bool:
    """``decision``: the Redis hash a bootstrapping agent writes (node, token, ts, run, new_cluster "1"/"0").
    True only when it is this run's (``run_id`` non-empty and equal) and says a brand-new cluster."""
    return bool(run_id) and decision.get("run") == run_id and decision.get("new_cluster") == "1"


def join(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None], hb: Heartbeat,
         new_cluster: bool = False) -> None:
    """Join the Primary Component; ``new_cluster``: this run's election formed a brand-new cluster (the first
    join may then ask for rsync SST, see sst_choice)."""
    ev("join", "waiting", "waiting for a Primary Component to join")
    wait_for("a Primary Component on another data node",  # Redis reads only: cheap to poll often
             lambda: primary_members(coord.states(cfg.data_nodes)), float(cfg.get("wait_timeout", 60)) + 120,
             max_interval=0.1)
    st = node.state()
    method: str | None = None
    if st.running and st.cluster_status != "Primary":
        # Right after a partition heals a node stays non-Primary until Galera merges the components;
        # give it Galera's own window (evs.inactive_timeout 15 s + evs.install_timeout 7.5 s) first, with room
        # for a loaded host (30 s was once too short on the lab with the other lab's tests beside it).
        window = float(cfg.get("merge_timeout", MERGE_WINDOW_S))
        ev("join", "waiting", "mariadbd runs on %s but is %s: giving it %.0fs to merge with the Primary Component"
           % (node.name, st.cluster_status or "not in a cluster", window))
        try:
            wait_for("%s to merge into the Primary Component" % node.name,
                     lambda: node.wsrep().get("wsrep_cluster_status") == "Primary", window)
        except Aborted:
            raise
        except AgentError:
            ev("join", "running", "%s stayed out of the Primary Component for %.0fs: restarting mariadbd so it "
               "rejoins (a non-Primary node commits nothing, so nothing is lost)" % (node.name, window))
            node.stop_mariadb()
        st = node.state()
    if st.running and st.cluster_status == "Primary":
        ev("join", "running", "a member of the Primary Component; waiting for Synced")
    else:
        wait_former_incarnation_gone(cfg, node, coord, ev)
        method, why = choose_sst(cfg, node, coord, new_cluster)
        ev("join", "running", "starting mariadbd to join (IST or SST from a donor); %s" % why,
           sst_method=method or "configured")
        node.start_mariadb(new_cluster=False, sst_method=method)
    wait_for("%s to join and reach Synced" % node.name, component_still_there(cfg, node, coord),
             float(cfg.get("join_timeout", 300)))
    if method:  # later SSTs this server takes part in use the configured method again (a dynamic variable)
        configured = sst_choice.option(sst_choice.server_options(), "wsrep_sst_method") or sst_choice.REPLACEABLE
        node.sql("SET GLOBAL wsrep_sst_method = '%s'" % configured.replace("'", ""))
    hb.beat()
    ev("join", "done", "%s joined and is Synced" % node.name)


EVICT_WAIT_S = 20.0
"""How long a joiner waits for the Primary Component to drop its own former (killed) server before starting
anyway: Galera declares a silent member inactive after evs.suspect_timeout (5 s by default)."""


def listing_former_incarnation(heartbeats: dict[str, election.NodeState], me: str) -> list[str]:
    """The other data nodes whose heartbeat (``heartbeats``: the daemons', each at most HEARTBEAT_TTL_MS old)
    shows a Primary Component that still lists a member named ``me``.  Called only while ``me``'s own mariadbd
    is not running, so that member is a former incarnation: killed, not yet evicted."""
    return [name for name, st in heartbeats.items() if name != me and st.is_primary and me in st.member_names()]


def wait_former_incarnation_gone(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None]) -> None:
    """Before a stopped server starts to join: wait (at most ``evict_wait`` s, default EVICT_WAIT_S) until no
    Primary Component still lists this node's former server.

    A server started while its killed predecessor is still a member is taken for a new node beside a suspected
    one: the group runs a membership round that times out (evs.install_timeout, 7.5 s) and then another.  On the
    lab a kill -9 and an immediate restart took 12-15 s to a Primary view; the eviction alone takes about 5 s
    (evs.suspect_timeout).  Nothing is lost by waiting: the node is down either way.  Judged by the other data
    nodes' daemon heartbeats (refreshed every ``heartbeat_interval`` s); with none, there is no wait.  (Reading
    this run's registrations too, the fresher of the two per node, was tried and reverted: the full suite then
    failed two recovery tests, not yet understood.)"""
    others = [n for n in cfg.data_nodes if n != node.name]

    def holders() -> list[str]:
        return listing_former_incarnation(coord.states(others, "heartbeat"), node.name)

    first = holders()
    if not first:
        return
    limit = float(cfg.get("evict_wait", EVICT_WAIT_S))
    ev("join", "waiting", "the Primary Component on %s still lists %s's former server (stopped without leaving, "
       "not yet evicted by Galera): waiting up to %.0fs for it to go, so the new server joins in one membership "
       "round" % (", ".join(first), node.name, limit))
    try:
        wait_for("Galera to evict %s's former server" % node.name, lambda: not holders(), limit, max_interval=0.2)
    except Aborted:
        raise
    except AgentError:
        ev("join", "running", "%s's former server is still listed after %.0fs: starting anyway" % (node.name, limit))


MERGE_WINDOW_S = 45.0
"""How long a running non-Primary node is given to merge into the Primary Component before it is restarted."""

COMPONENT_GONE = "the Primary Component it was joining is gone"
"""The words of a join's failure when the component it joined vanished (the pipeline elects again once)."""


def component_still_there(cfg: Config, node: Node, coord: Coordination) -> Callable[[], bool]:
    """The join's wait condition: True once ``node`` is Primary and Synced.  Raises AgentError when the Primary
    Component it is joining is gone: every other data node's daemon heartbeat says non-Primary (or not running)
    for longer than Galera's merge window (``merge_timeout``, 45 s) while this node is not Primary either.  A
    join into nothing would otherwise wait out ``join_timeout`` (300 s); nothing is bootstrapped over the
    others: the error says to run recover, whose election judges the positions."""
    grace = float(cfg.get("merge_timeout", MERGE_WINDOW_S))
    others = [n for n in cfg.data_nodes if n != node.name]
    gone_since: list[float] = []

    def check() -> bool:
        if primary_synced(node):
            return True
        beats = coord.states(others, "heartbeat")  # the daemons' live view, not this run's registrations
        if beats and not primary_members(beats) and node.wsrep().get("wsrep_cluster_status") != "Primary":
            if not gone_since:
                gone_since.append(time.monotonic())
            elif time.monotonic() - gone_since[0] > grace:
                said = ", ".join("%s %s" % (n, b.cluster_status or ("running" if b.running else "stopped"))
                                 for n, b in sorted(beats.items()))
                raise AgentError("%s: %s (%s for %.0fs): nothing was bootstrapped; run `studio-cluster recover "
                                 "PROFILE`" % (node.name, COMPONENT_GONE, said, grace))
        else:
            gone_since.clear()
        return False

    return check


def choose_sst(cfg: Config, node: Node, coord: Coordination, new_cluster: bool) -> tuple[str | None, str]:
    """The SST method this joiner asks for instead of the configured one (None: keep it), and why."""
    try:
        opts = sst_choice.server_options()
        donors = primary_members(coord.states(cfg.data_nodes))
        facts = sst_choice.read(coord.r, coord.prefix, str(cfg.get("run_id", "")), donors)
        return sst_choice.choose(sst_choice.option(opts, "wsrep_sst_method") or "", new_cluster, facts,
                                 sst_choice.rsync_available(), sst_choice.tls_option(opts),
                                 int(cfg.get("rsync_sst_limit", sst_choice.DEFAULT_LIMIT_BYTES)))
    except Exception as exc:  # never let the choice stop a join: the configured method always works
        return None, "keeping the configured SST method (%s)" % exc


def wait_cluster_complete(cfg: Config, node: Node, ev: Callable[..., None]) -> None:
    """A data node is done once the component holds every member (both data nodes + garbd)."""
    want = int(cfg.get("expected_size", 3))
    ev("complete", "waiting", "waiting for cluster size %d" % want)
    wait_for("cluster size %d on %s (the other data node and garbd joining)" % (want, node.name),
             lambda: int(node.wsrep().get("wsrep_cluster_size") or 0) >= want, float(cfg.get("join_timeout", 300)))
    ev("complete", "done", "cluster size %d, Primary, Synced" % want)


def bootstrap_arbiter(cfg: Config, node: Node, coord: Coordination, ev: Callable[..., None]) -> dict[str, Any]:
    hb = Heartbeat(node, coord)
    hb.beat()
    hb.start()
    try:
        # Judge by this run's registrations, not by the daemons' heartbeats: a heartbeat can still say
        # Primary and Synced seconds after its server stopped (it was taken for "nothing to do" while both
        # data nodes were down and about to bootstrap, and garbd was left running as a Primary of its own).
        try:
            wait_for("every data node to register", lambda: len(coord.states(cfg.data_nodes)) == len(cfg.data_nodes),
                     float(cfg.get("wait_timeout", 60)), max_interval=0.1)
        except Aborted:
            raise
        except AgentError:
            pass  # a data node that never registers: the waits below judge by what there is
        states = coord.states(cfg.data_nodes) or coord.live_states(cfg.data_nodes)
        garbd_running = bool(node.pids("garbd"))
        if garbd_running and primary_members(states) and all_synced(cfg, states) and garbd_member(cfg, node, states):
            ev("done", "done", "garbd runs and the cluster is complete: nothing to do", action="none")
            return {"node": node.name, "action": "none"}
        survivor = garbd_running
        ev("garbd", "waiting", "waiting for both data nodes to be Primary and Synced" if survivor else
           "waiting for both data nodes to be in the Primary Component")

        def data_ready() -> bool:
            nonlocal garbd_running
            if garbd_running:
                # A data agent that finds no Primary Component waits for garbd to stop before it bootstraps
                # (a garbd left as a Primary Component of one would reverse history).  Judge by this run's
                # registrations: a crashed node's last heartbeat may still say Primary for a few seconds.
                # Stopped exactly when the data agents' own election says a data node bootstraps (every
                # node registered and none Primary, or forced), never while a data node may still be Primary
                # with it: the same pure function on the same registrations.
                reg = coord.states(cfg.data_nodes)
                decision = election.decide(reg, cfg.data_nodes, cfg.preferred, cfg.get("force"))
                if decision.kind == election.BOOTSTRAP:
                    ev("garbd", "running", "a data node is about to bootstrap (%s): stopping garbd first, so that "
                       "it cannot hold a Primary Component of its own" % decision.node)
                    node.stop_garbd(leave=False)
                    garbd_running = False
            if not garbd_running and component_holds_data_nodes(coord.states(cfg.data_nodes), cfg.data_nodes):
                return True  # garbd joins beside a joiner's state transfer (issue 12)
            return all_synced(cfg, coord.live_states(cfg.data_nodes))

        wait_for("both data nodes in the Primary Component" if not survivor else "both data nodes Primary and Synced",
                 data_ready,  # Redis reads only: cheap to poll often
                 float(cfg.get("wait_timeout", 60)) + float(cfg.get("join_timeout", 300)), max_interval=0.1)
        if garbd_running:
            # A garbd that survived is kept only if it is (or soon becomes) a member by its identity; one
            # stuck outside the component (it remembers dead incarnations, facts.md) is restarted.
            try:
                wait_for("the running garbd to be a member",
                         lambda: garbd_member(cfg, node, coord.live_states(cfg.data_nodes)), 10)
            except Aborted:
                raise
            except AgentError:
                ev("garbd", "running", "the running garbd is not a member of the Primary Component: restarting it")
                node.stop_garbd()
                garbd_running = False
        if not garbd_running:
            ev("garbd", "running", "starting garbd")
            node.start_garbd()
        want = int(cfg.get("expected_size", 3))
        wait_for("garbd %s to be a member of the Primary Component (size %d, every member alive)"
                 % (node.garbd_uuid() or "(identity not yet known)", want),
                 lambda: node.pids("garbd") and garbd_member(cfg, node, coord.live_states(cfg.data_nodes)),
                 float(cfg.get("start_timeout", 120)))
        ev("garbd", "done", "garbd %s joined: cluster size %d" % (node.garbd_uuid(), want))
        return {"node": node.name, "action": "start" if not garbd_running else "none"}
    finally:
        hb.stop.set()
        hb.join(timeout=2)


def component_holds_data_nodes(registrations: dict[str, election.NodeState], data_nodes: list[str]) -> bool:
    """Some data node's registration in this run says it runs in a Primary Component whose members
    (``mysql.wsrep_cluster_members`` names) include every data node, whatever their local state (a joiner in
    its state transfer counts).

    ``registrations``: this run's registrations (``Coordination.states``), which each data agent refreshes every
    second while it runs; never the daemons' heartbeats, which can say Primary for seconds after a server died.
    A garbd that is not running may start then (issue 12): a fresh garbd (its gvwstate.dat removed) can only join
    a Primary Component, never form one, and its join overlaps the joiner's state transfer instead of following
    it; Galera serves garbd's trivial state transfer once a donor is Synced again.  Not earlier: a garbd joining
    in the same moment as a data node delayed that node's Primary view by about 6 s on the lab (both entering
    one membership round), more than garbd's whole join costs."""
    want = set(data_nodes)
    return any(st.is_primary and want <= st.member_names() for st in registrations.values())


def garbd_member(cfg: Config, node: Node, states: dict[str, election.NodeState]) -> bool:
    """This garbd, by its identity, is a member of a Primary Component of exactly ``expected_size``
    members: a dead incarnation not yet evicted neither counts for it nor hides behind the size."""
    me, want = node.garbd_uuid(), int(cfg.get("expected_size", 3))
    return any(st.is_primary and st.cluster_size == want and is_member(me, st.member_uuids(), want)
               for st in states.values())


def all_synced(cfg: Config, states: dict[str, election.NodeState]) -> bool:
    return all(n in states and states[n].cluster_status == "Primary" and states[n].local_state == "Synced"
               for n in cfg.data_nodes)


def atomic_write(path: str, text: str, like: str | None = None) -> None:
    """Replace ``path`` whole (temp file, fsync, rename), keeping its owner and mode, or those of ``like``
    (a file or directory; its mode minus the execute bits) when ``path`` does not exist yet."""
    tmp = path + ".studio-cluster.tmp"
    try:
        st = os.stat(path)
        mode = st.st_mode & 0o7777
    except FileNotFoundError:
        if like is None:
            raise
        st = os.stat(like)
        mode = st.st_mode & 0o666
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# -- the long-running daemon: health endpoint + heartbeat -----------------------------------------
def daemon(cfg: Config) -> None:
    node = Node(cfg)
    coord = None
    with contextlib.suppress(Exception):
        coord = Coordination(cfg)
    cache: dict[str, Any] = {"t": 0.0, "ok": False, "body": ""}
    lock = threading.Lock()

    def health() -> Any:
        with lock:
            if time.monotonic() - cache["t"] > 0.5:
                w = node.wsrep()
                reject = ""
                if w.get("wsrep_cluster_status"):
                    # the SST method may have been set for a while (sst_choice); a drained node refuses queries
                    rows = node.sql("SELECT @@wsrep_sst_method, @@wsrep_reject_queries")
                    if rows and len(rows[0]) > 1:
                        cache["sst_method"], reject = rows[0][0], rows[0][1]
                ok, why = health_verdict(w.get("wsrep_cluster_status", ""), w.get("wsrep_local_state_comment", ""),
                                         cache.get("sst_method", ""), reject)
                if cfg.get("crafter"):  # Crafter Studio runs here: it must answer too (docs/crafter.md)
                    ok, why = node_verdict((ok, why), studio_status(cfg.studio_status_url, cfg.get("studio_token")))
                cache.update(t=time.monotonic(), ok=ok, body=json.dumps({
                    "node": node.name, "healthy": ok, "reason": why,
                    "cluster_status": w.get("wsrep_cluster_status", "down"),
                    "state": w.get("wsrep_local_state_comment", "down"), "size": w.get("wsrep_cluster_size", "0")}))
            return cache["ok"], cache["body"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok, body = health()
            data = (body + "\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    if node.role == "studio":
        server = http.server.ThreadingHTTPServer((cfg.get("health_bind", "0.0.0.0"), int(cfg.health_port)), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    publisher = Publisher(cfg, coord) if coord is not None and cfg.get("crafter") else None
    while True:
        if coord is not None:
            with contextlib.suppress(Exception):
                coord.publish_state(node.state(), kind="heartbeat")
        if publisher is not None:  # the authoring name moved: make its node the primary publisher, once
            with contextlib.suppress(Exception):
                publisher.step()
        time.sleep(float(cfg.get("heartbeat_interval", 2)))


DAEMON_UNIT = "studio-cluster-agent.service"
DAEMON_HOME = "/var/lib/studio-cluster"  # the daemon's agent copy: /run is emptied at every boot
DAEMON_CONF = "/etc/studio-cluster/agent-daemon.json"


def daemon_unit(agent_dir: str) -> str:
    return """# written by studio-cluster: the node agent's health endpoint and Redis heartbeat
[Unit]
Description=studio-cluster node agent (health endpoint, Redis heartbeat)
After=network.target

[Service]
ExecStart=%s %s daemon
StandardInput=file:%s
StandardOutput=journal
StandardError=journal
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
""" % (sys.executable, agent_dir, DAEMON_CONF)


def agent_home_dir() -> str:
    """This agent's own directory (the symlink an installer made resolved)."""
    return os.path.realpath(sys.argv[0])


def persistent_agent() -> str:
    """A copy of this agent under DAEMON_HOME (same directory name: it names the version), for a unit that
    must start at boot; older copies are pruned."""
    src = os.path.realpath(sys.argv[0])  # the installed agent is a symlink to its version's directory
    target = os.path.join(DAEMON_HOME, os.path.basename(src))
    if not os.path.exists(os.path.join(target, "DIGEST")):
        os.makedirs(DAEMON_HOME, mode=0o755, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=os.path.basename(src) + ".", dir=DAEMON_HOME)
        try:
            shutil.copytree(src, staging, dirs_exist_ok=True)
            os.chmod(staging, 0o700)  # root runs it; nobody else needs to read it
            with contextlib.suppress(OSError):
                os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for old in os.listdir(DAEMON_HOME):
        path = os.path.join(DAEMON_HOME, old)
        if old.startswith("agent-") and path != target and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
    return target


def ensure_daemon_unit(cfg: Config, raw: str) -> str:
    """The daemon as a systemd unit of its own: restarted on failure, enabled at boot.  Restarted when its
    config or agent changed; started when it is not active; else left alone."""
    stop_pidfile_daemon(cfg)  # one started before the host's manager was systemd holds the health port
    changed = write_if_changed(DAEMON_CONF, raw, 0o600)
    unit_path = "/etc/systemd/system/" + DAEMON_UNIT
    if write_if_changed(unit_path, daemon_unit(persistent_agent())):
        changed = True
        systemctl("daemon-reload")
    systemctl("enable", DAEMON_UNIT)
    if changed:
        systemctl("restart", DAEMON_UNIT)
        return "restarted"
    active = subprocess.run(["systemctl", "is-active", "--quiet", DAEMON_UNIT]).returncode == 0
    if active:
        return "running"
    systemctl("start", DAEMON_UNIT)
    return "started"


def stop_pidfile_daemon(cfg: Config) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        with open(os.path.join(cfg.run_dir, "daemon.pid")) as fh:
            os.kill(int(fh.read().strip()), signal.SIGTERM)
        os.unlink(os.path.join(cfg.run_dir, "daemon.pid"))


def ensure_daemon(cfg: Config, raw: str) -> str:
    """Start `daemon` detached unless one already runs (pid file); the config goes to a 0600 file.  Under
    systemd the daemon is a unit of its own (:func:`ensure_daemon_unit`)."""
    if cfg.get("manager") == "systemd":
        return ensure_daemon_unit(cfg, raw)
    pidfile = os.path.join(cfg.run_dir, "daemon.pid")
    conf = os.path.join(cfg.run_dir, "daemon.json")
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        with open(pidfile) as fh:
            pid = int(fh.read().strip())
        os.kill(pid, 0)
        with open(conf) as fh:
            if fh.read() == raw:
                return "running"
        os.kill(pid, signal.SIGTERM)
    fd = os.open(conf + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(raw)
    os.replace(conf + ".tmp", conf)
    log = os.path.join(cfg.run_dir, "daemon.log")
    with open(log, "ab") as out, open(conf, "rb") as stdin:
        p = subprocess.Popen([sys.executable, sys.argv[0], "daemon"], stdin=stdin, stdout=out, stderr=out,
                             start_new_session=True, close_fds=True)
    with open(pidfile, "w") as fh:
        fh.write(str(p.pid))
    return "started"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "state"
    if command == "root":  # a catalogue script, as root (agent scope: the SSH user's only road to root)
        from wizard.agent.rootcmd import main_root

        return main_root(argv[1:])
    if command == "digest":  # which agent version is installed here, checked file by file against its manifest
        from wizard.agent.rootcmd import damaged_files

        home = agent_home_dir()
        bad = damaged_files(home)
        if bad:
            print("damaged: %s" % ", ".join(bad[:5]))
            return 3
        with open(os.path.join(home, "DIGEST")) as fh:
            print(fh.read().strip())
        return 0
    raw = sys.stdin.read()
    data = json.loads(raw) if raw.strip() else {}
    if command == "backup-scheduled":  # from the Arbiter's timer or cron line: the job description itself
        from wizard.agent.backup_job import run_scheduled

        result = run_scheduled(data)
        print(json.dumps(result))
        return 0 if result.get("state") == "complete" else 1
    job = data.pop("backup_job", None) if command == "ensure-daemon" else None
    if command == "ensure-daemon":
        raw = json.dumps(data)  # the daemon's own config: a changed schedule does not restart the daemon
    cfg = Config(data)
    try:
        if command == "bootstrap":
            result = bootstrap(cfg)
        elif command == "daemon":
            daemon(cfg)
            return 0
        elif command == "ensure-daemon":
            result = {"daemon": ensure_daemon(cfg, raw)}
            if cfg.get("role") == "arbiter":
                from wizard.agent.backup_job import ensure_schedule

                result["backups"] = ensure_schedule(job, str(cfg.get("manager") or "direct"), persistent_agent())
        elif command == "sst-account":  # on one Primary node: the account, replicated by its hash
            Node(cfg).ensure_sst_user()
            result = {"sst_account": "ok"}
        elif command == "sst-auth":  # on every running data node: the server's own copy
            Node(cfg).set_sst_auth()
            result = {"sst_auth": "ok"}
        elif command == "state":
            result = Node(cfg).state(recover=bool(cfg.get("recover"))).to_dict()
        elif command.startswith("k8s-"):  # the Kubernetes pods' steps (wizard.k8s): the same election, handed over
            from wizard.agent.k8s_pod import run_pod_command

            result = run_pod_command(command, cfg)
        else:
            print(json.dumps({"error": "unknown command %r" % command}))
            return 2
    except AgentError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    except Exception as exc:
        import redis  # bundled in the zipapp

        if isinstance(exc, redis.RedisError):
            print(json.dumps({"error": "the coordination store (Redis) failed on %s: %s; bring it back and run "
                                       "again" % (cfg.get("node", "?"), exc)}))
            return 1
        raise
    print(json.dumps(result))
    return 0
