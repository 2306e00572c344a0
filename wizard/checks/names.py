"""DNS: the authoring name through the configured server, and node names seen alike from every node."""

from __future__ import annotations

import urllib.error
import urllib.request

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from wizard.checks.base import CheckContext, Outcome, fail, ok, register, warn
from wizard.checks.facts import node_fact, resolve_targets
from wizard.profile import Node, Profile, is_ip


def query_a(profile: Profile, name: str, timeout: float = 2.0) -> list[str]:
    """Ask the profile's DNS servers directly (not this machine's resolver) for A records of `name`."""
    last: Exception | None = None
    for server in profile.dns.servers:
        try:
            msg = dns.message.make_query(name, dns.rdatatype.A)
            resp = dns.query.udp(msg, server, port=profile.dns.port, timeout=timeout)
            return sorted({rr.address for rrset in resp.answer for rr in rrset if rr.rdtype == dns.rdatatype.A})
        except (dns.exception.DNSException, OSError) as exc:
            last = exc
    raise OSError(f"no DNS server answered ({last})")


def health_ok(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@register("authoring-dns", "Authoring name", scope="cluster", needs_ssh=False, order=60)
def authoring_dns(ctx: CheckContext) -> Outcome:
    p = ctx.profile
    name = p.dns.authoring_name
    if p.dns.api_url:  # apply owns the record: the API must let us in; a record that differs is replaced
        from wizard.dnsapi import DnsApiError, plan_record

        try:
            change = plan_record(p, ctx.secrets)
        except DnsApiError as exc:
            return fail(exc.message, exc.hint)
        if change.action != "unchanged":
            return ok(f"{name}: apply will {change.action} its LUA record through the PowerDNS API "
                      f"({p.dns.api_url})" + (f", replacing {', '.join(change.deletes)}" if change.deletes else ""))
    try:
        answers = query_a(p, name)
    except OSError as exc:
        return fail(f"{name}: {exc}", f"start the DNS server {', '.join(p.dns.servers)} or fix dns.servers")
    if not answers:
        return fail(f"{name} has no A record on {', '.join(p.dns.servers)}",
                    f"add the authoring record (studio-cluster render shows it) to zone {p.dns.record_zone}")
    studio = {n.address: n.name for n in p.studio_nodes}
    stray = [a for a in answers if a not in studio]
    if stray:
        return fail(f"{name} resolves to {', '.join(stray)}, which is not a Studio node",
                    f"point the record at {p.primary.address} (primary) with failover to {p.secondary.address}")
    where = ", ".join(f"{a} ({studio[a]})" for a in answers)
    if health_ok(p.primary.address, p.dns.health_port):
        if answers != [p.primary.address]:
            return warn(f"{name} -> {where} although {p.primary.name} is healthy",
                        "wait one TTL + health interval, then check the record's order (primary first)")
        return ok(f"{name} -> {where} (primary healthy)")
    return ok(f"{name} -> {where} (no health endpoint yet: failover order not verified)")


@register("names", "Node names", order=50)
def node_names(ctx: CheckContext, node: Node) -> Outcome:
    wanted = resolve_targets(ctx, node)
    res = node_fact(ctx, node, "resolve")  # the probe: wizard.checks.facts.RESOLVE
    wrong, missing = [], []
    for name, got in res.items():
        peer = wanted[name]
        if isinstance(got, str):
            missing.append(name)
            continue
        expected = peer.address if is_ip(peer.address) else None
        if expected is not None and got != [expected]:
            wrong.append(f"{name} -> {', '.join(got)} (expected {expected})")
        ctx.shared.setdefault("resolved", {}).setdefault(name, {})[node.name] = got
    if wrong:
        return fail("; ".join(wrong), f"fix /etc/hosts or DNS on {node.name} so peers resolve to their addresses")
    if missing:
        return warn(f"cannot resolve {', '.join(missing)}",
                    f"add {', '.join(missing)} to /etc/hosts or DNS on {node.name} (logs and tools use names)")
    return ok(f"resolves {', '.join(wanted)} to their addresses")
