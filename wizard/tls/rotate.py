"""Rotate the generated CA without downtime: three rolling replays, the cluster Primary throughout.

1. *trust*: a new CA is generated into the store as ``next-ca``; every node's CA bundle gets it besides the old
   one (certificates unchanged); replay restarts the nodes one at a time.
2. *reissue*: the new CA becomes the signing CA (the old one stays trusted as ``old-ca``); every node gets a
   certificate from the new CA; replay restarts them one at a time.  Old and new certificates meet during the
   roll, and every node trusts both CAs.
3. *drop*: the old CA is removed from the store and from every bundle; replay restarts them one at a time.

Each phase's replay restarts a node only while that is safe (:func:`wizard.pipeline.restart_blocker`); a restart
it leaves pending is retried (``attempts``) before the next phase starts.  Interrupted, :func:`rotate_ca` resumes
where the store says it is (``next-ca`` present: phase 1 again, then on; ``old-ca`` present: phase 2 again, then
on).  The operator's own files (``tls.cert`` a path) rotate by hand the same way with ``tls.extra_ca``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from wizard.pipeline import Listener, PipelineResult, replay
from wizard.profile import TLS_GENERATE, Profile
from wizard.remote import RunLog
from wizard.secrets import Secrets
from wizard.tls import certs
from wizard.tls.material import NEXT_CA, OLD_CA, TLSError, _write, store_dir

Progress = Callable[[str], None]


def _roll(profile: Profile, secrets: Secrets, phase: str, progress: Progress, listener: Listener | None,
          attempts: int, runlog: RunLog | None = None) -> PipelineResult:
    for attempt in range(1, attempts + 1):
        progress(f"{phase}: rolling restart, one node at a time (a replay; attempt {attempt} of {attempts})")
        result = replay(profile, secrets, skip_checks=True, listener=listener, runlog=runlog)
        if not result.pending_restarts:
            return result
        progress(f"{phase}: restarts pending: {result.pending_restarts}")
    raise TLSError(f"CA rotation, {phase}: restarts still pending after {attempts} replays "
                   f"({', '.join(result.pending_restarts)}); run `studio-cluster replay` until none is pending, "
                   "then rotate again (it resumes here)")


def _move(d: Path, src: str, dst: str) -> None:
    for ext in ("key", "pem"):
        os.replace(d / f"{src}.{ext}", d / f"{dst}.{ext}")


def rotate_ca(profile: Profile, secrets: Secrets, *, progress: Progress = lambda _m: None,
              listener: Listener | None = None, attempts: int = 3, runlog: RunLog | None = None
              ) -> list[PipelineResult]:
    """Run the three phases (module doc); returns each phase's last replay result.  ``runlog``: every remote
    command of the three phases' replays goes there (as a replay's own does).

    Raises :class:`TLSError` (TLS off, the operator's own files, a restart that stays pending) and whatever
    :func:`wizard.pipeline.replay` raises (:class:`wizard.pipeline.PipelineError`)."""
    tls = profile.tls
    if not tls.enabled:
        raise TLSError("tls.enabled is false: there is no CA to rotate; set tls.enabled: true and replay")
    if tls.cert != TLS_GENERATE:
        raise TLSError("tls.cert names your own files: rotate them by hand (add the new CA to tls.extra_ca and replay; "
                       "switch tls.ca_cert, cert and key to the new files and replay; drop tls.extra_ca and replay)")
    d = store_dir(profile)
    results = []
    if (d / f"{NEXT_CA}.pem").exists() and (d / f"{OLD_CA}.pem").exists() and not (d / "ca.pem").exists():
        _move(d, NEXT_CA, "ca")  # interrupted between the two moves of phase 2
    if not (d / f"{NEXT_CA}.pem").exists() and not (d / f"{OLD_CA}.pem").exists():
        new = certs.new_ca(f"studio-cluster CA {profile.cluster_name}")
        _write(d / f"{NEXT_CA}.key", new.key, 0o600)
        _write(d / f"{NEXT_CA}.pem", new.cert, 0o644)
    if (d / f"{NEXT_CA}.pem").exists():
        results.append(_roll(profile, secrets, "1/3 trust the new CA", progress, listener, attempts, runlog))
        _move(d, "ca", OLD_CA)
        _move(d, NEXT_CA, "ca")
    results.append(_roll(profile, secrets, "2/3 certificates from the new CA", progress, listener, attempts, runlog))
    for ext in ("key", "pem"):
        (d / f"{OLD_CA}.{ext}").unlink(missing_ok=True)
    results.append(_roll(profile, secrets, "3/3 drop the old CA", progress, listener, attempts, runlog))
    return results
