"""`lab down` kills the helpers an interrupted lab run left on its paths (cp of a datadir, ssh-keygen...), never
a shell or a flock that merely names a lab path (an engineer's `flock LOCK sh -c '... /var/lib/...lab/hosts'`
was killed while it waited for the lock)."""

from __future__ import annotations

import subprocess

from wizard.lab.layout import LAB_DIR
from wizard.lab.lifecycle import _stray_helpers


def test_a_shell_naming_a_lab_path_is_not_a_stray_helper() -> None:
    shell = subprocess.Popen(["sh", "-c", f"sleep 600; : {LAB_DIR}/hosts/studio1"], start_new_session=True)
    try:
        strays = _stray_helpers()
        assert shell.pid not in strays
    finally:
        shell.kill()
        shell.wait()
