"""Least privilege for the SSH user: the one sudoers rule that lets it run only the agent, and the installer that
puts this version of the agent where that rule points (``studio-cluster sudoers PROFILE [--installer FILE]``).

With ``ssh.sudo_scope: agent`` every root action reaches a node as ``sudo -n /usr/local/sbin/studio-cluster-agent
...``: the agent's own commands, or ``root NAME`` running one script of the catalogue the agent carries
(:mod:`wizard.agent.rootcmd`).  The SSH user cannot install the agent (that would be root for anyone), so root
installs it once per studio-cluster version, with the script :func:`installer_script` writes; a node whose
installed agent is another version is refused with that fix.  docs/least-privilege.md says what the rule does
and does not protect.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from dataclasses import dataclass

from wizard.agent.rootcmd import ENTRY, INSTALL_ROOT, INSTALLED
from wizard.agent_bundle import CACHE_TAG, agent_digest, build_agent
from wizard.profile import Profile

SUDOERS_FILE = "/etc/sudoers.d/studio-cluster"


@dataclass(frozen=True)
class Rule:
    """One sudoers line and the nodes whose SSH user it is for."""

    user: str
    nodes: tuple[str, ...]

    @property
    def line(self) -> str:
        return f"{self.user} ALL=(root) NOPASSWD: {ENTRY}"


def rules(profile: Profile) -> list[Rule]:
    """The rules the profile's SSH users need (root logins need none), one per user, in node order."""
    by_user: dict[str, list[str]] = {}
    for node in profile.nodes:
        if node.ssh.user != "root":
            by_user.setdefault(node.ssh.user, []).append(node.name)
    return [Rule(user, tuple(nodes)) for user, nodes in by_user.items()]


def not_in_agent_scope(profile: Profile) -> list[str]:
    """Nodes reached as a sudo user whose profile does not yet say ``sudo_scope: agent``."""
    return [n.name for n in profile.nodes if n.ssh.user != "root" and not n.ssh.agent_scope]


# Unpacks the bundle into a fresh directory with a MANIFEST of every file's sha256 (the agent's `digest` command
# checks it), and puts it in place of a version directory that is missing or fails that check; a sound one stays.
INSTALL_PY = r"""
import compileall, hashlib, json, os, shutil, sys, tempfile, zipfile
pyz, root, version, digest, tag = sys.argv[1:6]
target = os.path.join(root, version)

def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()

def sound(d):
    try:
        with open(os.path.join(d, "MANIFEST.json")) as fh:
            manifest = json.load(fh)
        with open(os.path.join(d, "DIGEST")) as fh:
            if fh.read().strip() != digest:
                return False
        return all(sha(os.path.join(d, rel)) == h for rel, h in manifest.items())
    except (OSError, ValueError):
        return False

if sound(target):
    print("kept")
    sys.exit(0)
staging = tempfile.mkdtemp(prefix="." + version + ".", dir=root)
try:
    with zipfile.ZipFile(pyz) as zf:
        zf.extractall(staging)
    if sys.implementation.cache_tag != tag:
        compileall.compile_dir(staging, quiet=1)
    manifest = {}
    for dirpath, _dirs, files in os.walk(staging):
        for name in files:
            path = os.path.join(dirpath, name)
            manifest[os.path.relpath(path, staging)] = sha(path)
    with open(os.path.join(staging, "DIGEST"), "w") as fh:
        fh.write(digest)
    with open(os.path.join(staging, "MANIFEST.json"), "w") as fh:
        json.dump(manifest, fh, sort_keys=True)
    os.chmod(staging, 0o755)
    if os.path.lexists(target):
        aside = target + ".damaged"
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside, ignore_errors=True)
        print("repaired")
    else:
        os.rename(staging, target)
        print("unpacked")
finally:
    shutil.rmtree(staging, ignore_errors=True)
"""


def installer_script() -> str:
    """A POSIX shell script, run as root on a node (``sh FILE [--rule USER]``), that installs this version of the
    agent: unpacked under :data:`INSTALL_ROOT` (root-owned, 0755) with a manifest of its files' hashes (a version
    directory that fails it is replaced), :data:`INSTALLED` pointed at it (an atomic symlink swap), other versions
    removed, and :data:`ENTRY` written.  ``--rule USER`` also writes :data:`SUDOERS_FILE` with that user's rule,
    checked by ``visudo -c`` before it takes effect; any other argument is refused.  A re-run changes nothing on a
    sound install.  The bundle is inside the script (base64) and checked against its sha256 before use."""
    bundle = build_agent()
    digest = agent_digest()
    version = f"agent-{digest[:16]}"
    encoded = "\n".join(textwrap.wrap(base64.b64encode(bundle).decode(), 76))
    return f"""#!/bin/sh
# studio-cluster agent installer, version {digest[:16]} (written by `studio-cluster sudoers --installer`).
# Run as root on each node:  sh THIS_FILE [--rule USER]
# Installs {INSTALL_ROOT}/{version}, points {INSTALLED} at it and writes {ENTRY};
# with --rule USER also {SUDOERS_FILE}: "USER ALL=(root) NOPASSWD: {ENTRY}".
set -eu
usage() {{ echo "usage: sh $0 [--rule USER]" >&2; exit 2; }}
rule_user=""
case $# in
  0) ;;
  2) [ "$1" = "--rule" ] || usage; rule_user=$2 ;;
  *) usage ;;
esac
[ "$(id -u)" = 0 ] || {{ echo "run this as root" >&2; exit 1; }}
py=$(command -v python3) || {{ echo "python3 is needed on this node" >&2; exit 1; }}
if [ -n "$rule_user" ]; then
  id -u "$rule_user" >/dev/null 2>&1 || {{ echo "no user $rule_user on this node" >&2; exit 1; }}
fi
umask 022
root={INSTALL_ROOT}
mkdir -p "$root"
chown root:root "$root"
chmod 0755 "$root"
tmp=$(mktemp -d "$root/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
base64 -d > "$tmp/agent.pyz" <<'STUDIO_CLUSTER_AGENT'
{encoded}
STUDIO_CLUSTER_AGENT
echo "{hashlib.sha256(bundle).hexdigest()}  $tmp/agent.pyz" | sha256sum -c --quiet -
state=$("$py" -I -S - "$tmp/agent.pyz" "$root" {version} {digest} {CACHE_TAG} <<'STUDIO_CLUSTER_INSTALL'
{INSTALL_PY.strip()}
STUDIO_CLUSTER_INSTALL
)
chown -R root:root "$root/{version}"
ln -sfn {version} "$root/.agent.new"
mv -T "$root/.agent.new" {INSTALLED}
for old in "$root"/agent-*; do
  [ "$old" = "$root/{version}" ] || [ ! -d "$old" ] || [ -L "$old" ] || rm -rf "$old"
done
cat > {ENTRY}.new <<STUDIO_CLUSTER_ENTRY
#!/bin/sh
# studio-cluster's one root entry point (docs/least-privilege.md): the installed agent, nothing else.
exec $py -I {INSTALLED} "\\$@"
STUDIO_CLUSTER_ENTRY
chown root:root {ENTRY}.new
chmod 0755 {ENTRY}.new
mv -f {ENTRY}.new {ENTRY}
echo "studio-cluster agent {digest[:16]} $state: {ENTRY}"
if [ -n "$rule_user" ]; then
  printf '%s ALL=(root) NOPASSWD: %s\\n' "$rule_user" {ENTRY} > {SUDOERS_FILE}.new
  chmod 0440 {SUDOERS_FILE}.new
  visudo -cqf {SUDOERS_FILE}.new || {{ rm -f {SUDOERS_FILE}.new; echo "visudo rejected the rule" >&2; exit 1; }}
  mv -f {SUDOERS_FILE}.new {SUDOERS_FILE}
  echo "rule written to {SUDOERS_FILE}: $rule_user ALL=(root) NOPASSWD: {ENTRY}"
  echo "remove any broader rule for $rule_user (e.g. NOPASSWD: ALL) for the rule to mean anything"
else
  echo "no sudoers rule written (sh $0 --rule USER writes one)"
fi
"""
