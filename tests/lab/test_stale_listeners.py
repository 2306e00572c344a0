"""A front end killed during its checks leaves the port-check listeners holding the cluster's ports for up to a
minute; the next run's --wsrep-recover then failed to bind ("Address already in use") and the election refused
with "position unknown", pointing at --force-bootstrap (a newcomer met this on the systemd lab).  The node agents
now stop such listeners when they start."""

from __future__ import annotations

import functools
import json

from tests.waits import wait_until
from wizard import lab
from wizard.checks.network import LISTEN_SECONDS, LISTENER, listen_ports
from wizard.pipeline import Listener, replay
from wizard.profile import Profile
from wizard.remote import Remote
from wizard.secrets import Secrets


def test_listeners_a_dead_front_end_left_are_stopped_by_the_next_run(profile: Profile, secrets: Secrets,
                                                                      remote: Remote) -> None:
    replay(profile, secrets, skip_checks=True)  # a healthy cluster: the listeners bind what is still free
    left: dict[str, int] = {}
    for node in profile.nodes:
        out = remote[node.name].run(["python3", "-I", "-S", "-c", LISTENER, str(LISTEN_SECONDS), node.address,
                                     *[str(p + 1000) for p in listen_ports(profile, node)]], timeout=20)
        pid = json.loads(out.stdout.strip().splitlines()[-1])["pid"]
        assert pid, out.stdout
        left[node.name] = int(pid)  # its front end "dies" here: nobody stops it
    messages: list[str] = []
    replay(profile, secrets, skip_checks=True, listener=Listener(on_event=lambda e: messages.append(e.message)))
    assert sum("port-check listener" in m for m in messages) == len(profile.nodes), messages
    def gone(name: str, pid: int) -> bool:
        return lab.host_exec(name, ["kill", "-0", str(pid)], check=False).returncode != 0

    for name, pid in left.items():
        wait_until(f"the left listener {pid} on {name} to be gone", functools.partial(gone, name, pid), 10)
