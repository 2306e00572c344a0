"""The Crafter-aware side of the cluster (docs/crafter.md): what the node agents need to judge Studio and set
the primary publisher (:mod:`~wizard.crafter.agent_settings`), the publisher record as status reads it
(:mod:`~wizard.crafter.publisher`), and the SSH trust content sync needs between the Studio nodes
(:mod:`~wizard.crafter.sync_trust`)."""
