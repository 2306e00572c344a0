"""Certificate expiry as the nodes hold it, for ``status`` and the monitor.

:func:`read_expiry` reads each node's certificate and CA bundle (``tls.remote_dir``) over SSH, in parallel, and
returns per node the nearest end of validity among them: ``{node: {"not_after": ISO 8601 UTC, "days": float,
"error": str}}`` (``error`` set and the others empty when the files cannot be read or parsed).
:func:`expiry_lines` turns that into the lines ``status`` prints, with a warning under ``tls.warn_days``.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wizard.agent.rootcmd import RootScript
from wizard.profile import Profile
from wizard.remote import Remote, RemoteError
from wizard.tls import certs
from wizard.tls.certs import CertError
from wizard.tls.options import paths

READ_CERTS = RootScript("tls-read-certs", "cat {cert} {ca}")


def _one(profile: Profile, remote: Remote, node: str, timeout: float) -> dict[str, Any]:
    p = paths(profile)
    try:
        res = remote[node].run(READ_CERTS(cert=str(p["cert"]), ca=str(p["ca"])), check=False, timeout=timeout,
                               what="read TLS certificates")
    except RemoteError as exc:
        return {"not_after": "", "days": None, "error": exc.message}
    if res.exit_code != 0:
        return {"not_after": "", "days": None, "error": f"cannot read {p['cert']} or {p['ca']}"}
    try:
        end = certs.nearest_expiry([res.stdout.encode()])
    except CertError as exc:
        return {"not_after": "", "days": None, "error": str(exc)}
    days = (end - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    return {"not_after": end.isoformat(timespec="seconds"), "days": round(days, 2), "error": ""}


def read_expiry(profile: Profile, remote: Remote, *, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """node -> the nearest certificate expiry it holds (see the module doc); {} when TLS is off."""
    if not profile.tls.enabled:
        return {}
    names = [n.name for n in profile.nodes]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(lambda n: _one(profile, remote, n, timeout), names), strict=True))


def expiry_lines(expiry: dict[str, dict[str, Any]] | None, warn_days: int) -> list[tuple[str, bool]]:
    """``[(line, is_warning)]``: one line for the nearest expiry per node, a warning when it is within
    ``warn_days`` days, already past, or unknown."""
    if not expiry:
        return []
    parts, warnings = [], []
    for node, e in expiry.items():
        if e.get("error"):
            parts.append(f"{node} unknown")
            warnings.append(f"TLS: {node}: {e['error']}")
            continue
        days = float(e["days"])
        parts.append(f"{node} {e['not_after'][:10]} ({days:.0f} d)")
        if days <= 0:
            warnings.append(f"TLS: {node}'s certificate or CA expired on {e['not_after']}: renew it (replay renews "
                            "generated certificates)")
        elif days < warn_days:
            warnings.append(f"TLS: {node}'s certificate or CA expires in {days:.0f} days ({e['not_after']}): renew "
                            "it (replay renews generated certificates before tls.warn_days)")
    return [("TLS certificates expire: " + ", ".join(parts), False), *((w, True) for w in warnings)]
