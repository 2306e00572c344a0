"""Content sync trust between the Crafter Studio nodes (docs/crafter.md).

Studio syncs its content repositories between the nodes with git over SSH, as Crafter's OS user
(``studio.os_user``), by ``ssh://{username}@{localAddress}{absolutePath}``.  :func:`ensure_sync_trust` makes
that work with host keys verified: on each Crafter node it takes the user's default SSH key (``id_ed25519``,
``id_rsa`` or ``id_ecdsa`` under its ``~/.ssh``), or creates an ed25519 one; it authorises that key for the
same user on the peer; and it pins the peer's host keys, read from the peer over the wizard's own verified SSH
connection, in the user's ``~/.ssh/known_hosts`` under the peer's address.  Nothing turns
``StrictHostKeyChecking`` off.  A re-run changes nothing.

:func:`ls_remote_both_ways` is the proof the ``crafter-sync`` check runs: ``git ls-remote`` over SSH as that
user from each node to the other, against a repository under ``studio.data_path`` on the peer, with
``StrictHostKeyChecking=yes`` and ``BatchMode=yes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from wizard.agent.rootcmd import RootScript
from wizard.profile import Node, Profile
from wizard.remote import Remote, RemoteError, sh

# Runs as root on a Studio node: argv[1] is a JSON request {"user", "authorize": [keys], "known": [lines]};
# prints {"pubkey", "hostkeys": [lines], "changed": [what], "error"}.
TRUST = r"""
import fcntl, json, os, pwd, subprocess, sys
# Two runs at once (replay twice) must not both create the key or append the same lines: one at a time, per node.
lock = os.open("/run/studio-cluster-crafter-trust.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
req = json.loads(sys.argv[1])
try:
    pw = pwd.getpwnam(req["user"])
except KeyError:
    print(json.dumps({"error": "no user %s" % req["user"]}))
    sys.exit(0)
ssh = os.path.join(pw.pw_dir, ".ssh")
changed = []
def own(path, mode):
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)
if not os.path.isdir(ssh):
    os.makedirs(ssh)
    own(ssh, 0o700)
    changed.append("created ~/.ssh")
key = next((os.path.join(ssh, k) for k in ("id_ed25519", "id_rsa", "id_ecdsa")
            if os.path.exists(os.path.join(ssh, k)) and os.path.exists(os.path.join(ssh, k + ".pub"))), None)
if key is None:
    key = os.path.join(ssh, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "%s@%s" % (req["user"], req["node"]),
                    "-f", key], check=True, stdin=subprocess.DEVNULL)
    own(key, 0o600)
    own(key + ".pub", 0o644)
    changed.append("created the key ~/.ssh/id_ed25519")
def add_lines(path, lines, what):
    try:
        with open(path) as fh:
            have = set(l.strip() for l in fh)
    except FileNotFoundError:
        have = set()
    new = [l for l in lines if l.strip() and l.strip() not in have]
    if new:
        with open(path, "a") as fh:
            for l in new:
                fh.write(l.strip() + "\n")
        own(path, 0o600)
        changed.append("%s: %d line(s) added" % (what, len(new)))
add_lines(os.path.join(ssh, "authorized_keys"), req["authorize"], "authorized_keys")
add_lines(os.path.join(ssh, "known_hosts"), req["known"], "known_hosts")
# The host keys sshd serves (sshd -T names them), else every ssh_host_*_key.pub there is.
served = []
try:
    out = subprocess.run(["sshd", "-T"], capture_output=True, text=True, timeout=20,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout
    served = [l.split(None, 1)[1].strip() + ".pub" for l in out.splitlines() if l.lower().startswith("hostkey ")]
except (OSError, subprocess.SubprocessError):
    pass
if not served:
    served = [os.path.join("/etc/ssh", n) for n in sorted(os.listdir("/etc/ssh"))
              if n.startswith("ssh_host_") and n.endswith("_key.pub")]
hostkeys = []
for path in served:
    try:
        with open(path) as fh:
            parts = fh.read().split()
    except OSError:
        continue
    if len(parts) >= 2:
        hostkeys.append("%s %s" % (parts[0], parts[1]))
with open(key + ".pub") as fh:
    pub = " ".join(fh.read().split()[:2])
print(json.dumps({"pubkey": pub, "hostkeys": hostkeys, "changed": changed, "home": pw.pw_dir}))
"""
TRUST_PY = RootScript("crafter-sync-trust", TRUST, kind="py")


class SyncTrustError(Exception):
    """A node where the trust could not be made; ``message`` names the node, the cause and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def crafter_pair(profile: Profile) -> list[Node]:
    """The Crafter nodes content sync runs between (empty unless ``studio.nodes`` lists two)."""
    nodes = [n for n in profile.studio_nodes if n.name in profile.studio.nodes]
    return nodes if len(nodes) == 2 else []


def _trust(remote: Remote, profile: Profile, node: Node, authorize: list[str], known: list[str]) -> dict[str, object]:
    request = json.dumps({"user": profile.studio.os_user, "node": node.name, "authorize": authorize, "known": known})
    res = remote[node.name].run(TRUST_PY(request), timeout=60,
                                what=f"content sync trust for {profile.studio.os_user}")
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    if "error" in out:
        raise SyncTrustError(f"{node.name}: the Crafter user {profile.studio.os_user!r} does not exist; install "
                             "Crafter there first, or set studio.os_user to the user Crafter runs as")
    return out


def ensure_sync_trust(profile: Profile, remote: Remote) -> dict[str, list[str]]:
    """Keys, authorisations and pinned host keys for content sync between the two Crafter nodes; returns
    node -> what changed (empty lists on a re-run; {} without two Crafter nodes).  Raises
    :class:`SyncTrustError` (a node without the Crafter user) or :class:`wizard.remote.RemoteError`."""
    pair = crafter_pair(profile)
    if not pair:
        return {}
    with ThreadPoolExecutor(2) as pool:  # first: each node's key and host keys, changing only its own key
        first = dict(zip([n.name for n in pair], pool.map(lambda n: _trust(remote, profile, n, [], []), pair),
                         strict=True))
    changed = {n.name: list(first[n.name]["changed"]) for n in pair}  # type: ignore[call-overload]

    def second(node: Node) -> dict[str, object]:
        peer = next(p for p in pair if p.name != node.name)
        known = [f"{peer.address} {line}" for line in first[peer.name]["hostkeys"]]  # type: ignore[attr-defined]
        return _trust(remote, profile, node, [str(first[peer.name]["pubkey"])], known)

    with ThreadPoolExecutor(2) as pool:
        for node, out in zip(pair, pool.map(second, pair), strict=True):
            changed[node.name] += list(out["changed"])  # type: ignore[call-overload]
    return changed


# Runs as root on the node that reads: prints the first git repository under the data path's repos/ (a
# directory holding .git, or a bare one holding HEAD and objects/), or "" when there is none.
FIND_REPO = r"""
import os, sys
root = os.path.join(sys.argv[1], "repos")
found = ""
for top, dirs, files in os.walk(root):
    dirs.sort()
    if ".git" in dirs or ("HEAD" in files and "objects" in dirs):
        found = top
        break
    if top.count(os.sep) - root.count(os.sep) >= 4:
        dirs[:] = []
print(found)
"""
FIND_REPO_PY = RootScript("crafter-find-repo", FIND_REPO, kind="py")

# As the Crafter user, with its home's known_hosts (exit 3: the peer is not pinned there yet); the ssh options are
# fixed text, the user, URL and peer are values.
LS_REMOTE_SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10"
LS_REMOTE = RootScript("crafter-ls-remote", sh("sh", "-c", (
    'u=$1; url=$2; sshcmd=$3; peer=$4; home=$(getent passwd "$u" | cut -d: -f6); '
    '[ -n "$home" ] || { echo "no user $u" >&2; exit 2; }; '
    'grep -qs "^$peer " "$home/.ssh/known_hosts" || exit 3; '
    'exec runuser -u "$u" -- env HOME="$home" GIT_SSH_COMMAND="$sshcmd" git ls-remote "$url"'), "ls-remote")
    .replace("{", "{{").replace("}", "}}") + " {user} {url} " + sh(LS_REMOTE_SSH) + " {peer}")


@dataclass(frozen=True)
class LsRemote:
    source: str
    target: str
    url: str
    ok: bool
    detail: str  # the refs seen (ok) or git's error
    set_up: bool = True  # False: the user's known_hosts does not pin the peer yet (apply has not run)


def ls_remote(profile: Profile, remote: Remote, source: Node, target: Node, timeout: float = 30,
              find_repo: Callable[[Node], str] | None = None) -> LsRemote:
    """``git ls-remote`` over SSH as the Crafter user, from ``source`` to a repository under the data path on
    ``target``, with strict host-key checking.  ``find_repo``: what :data:`FIND_REPO` prints on a node, when the
    caller has it (the checks' node session); else it runs."""
    st = profile.studio
    if find_repo is not None:
        repo = find_repo(target).strip()
    else:
        repo = remote[target.name].run(FIND_REPO_PY(str(st.data_path)), timeout=timeout,
                                       what="find a content repository").stdout.strip()
    if not repo:
        return LsRemote(source.name, target.name, "", False,
                        f"no git repository under {st.data_path}/repos on {target.name}")
    url = f"ssh://{st.os_user}@{target.address}{repo}"
    try:
        res = remote[source.name].run(LS_REMOTE(user=st.os_user, url=url, peer=target.address), timeout=timeout,
                                      check=False, what="git ls-remote")
    except RemoteError as exc:
        return LsRemote(source.name, target.name, url, False, exc.message)
    if res.exit_code == 3:
        return LsRemote(source.name, target.name, url, False, "not set up yet", set_up=False)
    if res.exit_code != 0:
        return LsRemote(source.name, target.name, url, False,
                        (res.stderr.strip() or res.stdout.strip() or f"exit {res.exit_code}")[-300:])
    refs = [line.split()[-1] for line in res.stdout.splitlines() if line.strip()]
    return LsRemote(source.name, target.name, url, True, f"{len(refs)} ref(s)")


def ls_remote_both_ways(profile: Profile, remote: Remote,
                        find_repo: Callable[[Node], str] | None = None) -> list[LsRemote]:
    """:func:`ls_remote` from each Crafter node to the other ([] without two Crafter nodes)."""
    pair = crafter_pair(profile)
    if not pair:
        return []
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda n: ls_remote(profile, remote, n, next(p for p in pair if p is not n),
                                                 find_repo=find_repo), pair))
