"""The node agent's Crafter settings, from the profile's ``studio:`` section (added to its JSON config)."""

from __future__ import annotations

from typing import Any

from wizard.profile import Node, Profile
from wizard.secrets import resolve


def crafter_node(profile: Profile, node: Node) -> bool:
    """Crafter Studio runs on ``node`` (the profile lists it in ``studio.nodes``)."""
    return node.is_studio and node.name in profile.studio.nodes


def management_token(profile: Profile) -> str | None:
    """Studio's management token, resolved from its reference (None for ``none``); registered for redaction.
    Raises :class:`wizard.secrets.SecretError` naming ``studio.management_token`` when it cannot be read."""
    return resolve(profile.studio.management_token, "studio.management_token")


def crafter_agent_config(profile: Profile, node: Node) -> dict[str, Any]:
    """Keys the agent reads on a node with Crafter (``crafter``: false elsewhere, which keeps the database-only
    health verdict): ``studio_status_url`` (this node's address filled in), ``studio_publisher_url``,
    ``studio_token``, ``crafter_nodes``, ``authoring_name``."""
    if not crafter_node(profile, node):
        return {"crafter": False}
    st = profile.studio
    return {
        "crafter": True,
        "studio_status_url": st.status_url.replace("{address}", node.address),
        "studio_publisher_url": st.publisher_url,
        "studio_token": management_token(profile),
        "crafter_nodes": list(st.nodes),
        "authoring_name": profile.dns.authoring_name,
    }
