"""The authoring name's record pushed through the PowerDNS Authoritative HTTP API.

When ``dns.api_url`` is set (with ``dns.api_key``, a secret reference), apply makes the zone hold
exactly the rendered LUA record at the authoring name: ``PATCH /api/v1/servers/<id>/zones/<zone>``
with the LUA rrset ``REPLACE``d and any plain A/AAAA/CNAME rrset at that name ``DELETE``d (they would
answer beside, or instead of, the failover record).  :func:`plan_record` compares first, so an
unchanged record sends nothing.  Without an API the record stays a rendered file (``render``).

The zone must live in a backend the API can edit (gsqlite3, gmysql, gpgsql, lmdb; not bind), and the
server needs ``enable-lua-records=yes`` to answer the record.  Requests go from the machine running
studio-cluster to the API, like the DNS checks' queries go to ``dns.servers``.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.profile import Profile
from wizard.render import authoring_rdata
from wizard.secrets import REDACTOR, Secrets

CONFLICTING = ("A", "AAAA", "CNAME")
Action = Literal["create", "update", "unchanged"]


class DnsApiError(Exception):
    """The API refused or could not be reached; `hint` is the one line a person acts on."""

    def __init__(self, message: str, hint: str) -> None:
        self.message = REDACTOR(message)
        self.hint = hint
        super().__init__(f"{self.message} ({hint})")


@dataclass(frozen=True)
class RecordChange:
    """What apply does to the authoring name: `action`, the LUA contents before (`old`, empty when there
    is none) and after (`new`), TTLs, and the conflicting rrsets it deletes (``"A 198.18.0.99"``)."""

    name: str
    zone: str
    action: Action
    new: list[str]
    ttl: int
    old: list[str] = field(default_factory=list)
    old_ttl: int | None = None
    deletes: list[str] = field(default_factory=list)

    @property
    def diff(self) -> str:
        """Lines a person reads: ``- old`` / ``+ new`` records in zone-file form."""
        lines = [f"- {self.name} {self.old_ttl} IN LUA {c}" for c in self.old if self.action != "unchanged"]
        lines += [f"- {self.name} IN {d}" for d in self.deletes]
        if self.action != "unchanged":
            lines += [f"+ {self.name} {self.ttl} IN LUA {c}" for c in self.new]
        return "\n".join(lines)


def _fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def wanted(profile: Profile) -> tuple[str, str, int]:
    """(rrset name with trailing dot, LUA content as the API spells it: ``A "ifurlup(...)"``, ttl)."""
    rdata = authoring_rdata(profile)  # LUA A "ifurlup(...)"
    return _fqdn(profile.dns.authoring_name), rdata.removeprefix("LUA ").strip(), profile.dns.ttl


class Api:
    """A small client of one PowerDNS server's HTTP API (``dns.api_url``, ``dns.api_server_id``)."""

    def __init__(self, profile: Profile, secrets: Secrets, timeout: float = 10) -> None:
        dns = profile.dns
        if dns.api_url is None:
            raise DnsApiError("dns.api_url is not set", "set dns.api_url and dns.api_key to push the record")
        if not secrets.dns_api_key:
            raise DnsApiError("dns.api_key resolved to nothing", "set dns.api_key to env:NAME, file:/path or ask")
        self.base = dns.api_url.rstrip("/")
        self.server = dns.api_server_id
        self.key = secrets.dns_api_key
        self.zone = _fqdn(dns.record_zone)
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base}/api/v1/servers/{self.server}{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (http(s) only: validated)
                                     headers={"X-API-Key": self.key, "Accept": "application/json",
                                              **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http(s) only: validated)
                text = resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with_error = detail
            with contextlib.suppress(ValueError, AttributeError):
                with_error = json.loads(detail).get("error", detail)
            raise self._http_error(method, exc.code, str(with_error)[:300]) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DnsApiError(f"cannot reach the PowerDNS API at {self.base}: {reason}",
                              "check dns.api_url, and that pdns runs with api=yes, webserver=yes and a "
                              "webserver-address / webserver-allow-from that let this machine in") from None
        return json.loads(text) if text.strip() else None

    def _http_error(self, method: str, code: int, detail: str) -> DnsApiError:
        where = f"PowerDNS API {method} zone {self.zone} at {self.base}"
        if code in (401, 403):
            return DnsApiError(f"{where}: the API key was refused (HTTP {code})",
                               "set dns.api_key to the server's api-key")
        if code == 404:
            return DnsApiError(f"{where}: zone {self.zone} (server {self.server}) is not on the server (HTTP 404)",
                               f"create the zone in an API-editable backend (pdnsutil create-zone {self.zone}), "
                               "or fix dns.zone / dns.api_server_id")
        if code == 422 and "LUA" in detail.upper():
            return DnsApiError(f"{where}: {detail} (HTTP 422)",
                               "the server must run with enable-lua-records=yes")
        if code == 422 and ("editable" in detail.lower() or "not support" in detail.lower()):
            return DnsApiError(f"{where}: {detail} (HTTP 422)",
                               "the zone's backend cannot be edited through the API (e.g. bind): move the zone "
                               "to gsqlite3, gmysql, gpgsql or lmdb")
        return DnsApiError(f"{where} failed: HTTP {code}: {detail}", "read the PowerDNS server's log")

    def rrsets(self) -> list[dict[str, Any]]:
        """Every rrset of the zone as the API returns it (name, type, ttl, records[{content, disabled}])."""
        zone = self._call("GET", f"/zones/{self.zone}")
        return list(zone.get("rrsets") or []) if isinstance(zone, dict) else []

    def patch(self, rrsets: list[dict[str, Any]]) -> None:
        self._call("PATCH", f"/zones/{self.zone}", {"rrsets": rrsets})


def plan_record(profile: Profile, secrets: Secrets, api: Api | None = None) -> RecordChange:
    """Compare the zone's record at the authoring name with the rendered one.  Changes nothing.
    Raises DnsApiError (unreachable, key refused, no such zone)."""
    api = api or Api(profile, secrets)
    name, content, ttl = wanted(profile)
    old: list[str] = []
    old_ttl: int | None = None
    deletes: list[str] = []
    for rr in api.rrsets():
        if _fqdn(rr.get("name", "")).lower() != name.lower():
            continue
        contents = [r["content"] for r in rr.get("records") or [] if not r.get("disabled")]
        if rr.get("type") == "LUA":
            old, old_ttl = contents, rr.get("ttl")
        elif rr.get("type") in CONFLICTING:
            deletes += [f"{rr['type']} {c}" for c in contents] or [rr["type"]]
    if not old:
        action: Action = "create"
    elif old == [content] and old_ttl == ttl and not deletes:
        action = "unchanged"
    else:
        action = "update"
    if action == "unchanged" and deletes:
        action = "update"
    return RecordChange(name, api.zone, action, [content], ttl, old, old_ttl, deletes)


def push_record(profile: Profile, secrets: Secrets) -> RecordChange:
    """Make the zone hold exactly the rendered record at the authoring name (nothing is sent when it
    already does), then read it back.  Returns the change made.  Raises DnsApiError."""
    api = Api(profile, secrets)
    change = plan_record(profile, secrets, api)
    if change.action == "unchanged":
        return change
    rrsets: list[dict[str, Any]] = [{
        "name": change.name, "type": "LUA", "ttl": change.ttl, "changetype": "REPLACE",
        "records": [{"content": c, "disabled": False} for c in change.new],
    }]
    for rrtype in dict.fromkeys(d.split()[0] for d in change.deletes):
        rrsets.append({"name": change.name, "type": rrtype, "changetype": "DELETE"})
    api.patch(rrsets)
    after = plan_record(profile, secrets, api)
    if after.action != "unchanged":
        raise DnsApiError(f"PowerDNS accepted the record for {change.name} but serves {after.old or 'none'}",
                          "read the PowerDNS server's log; another writer may own this name")
    return change
