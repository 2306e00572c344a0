"""The catalogue of named root actions (:mod:`wizard.agent.rootcmd`): every module that defines a
:class:`~wizard.agent.rootcmd.RootScript`, imported so the agent bundle can carry all of them.

A module that defines root scripts must be listed in :data:`MODULES` (a unit test walks the package and
fails on one that is not): a script missing from the bundle's catalogue fails on a node in agent scope
with "no root script is named ...".
"""

from __future__ import annotations

import importlib

from wizard.agent.rootcmd import SCRIPTS, catalogue_of

MODULES = (
    "wizard.remote",
    "wizard.coordinator",
    "wizard.apply",
    "wizard.datadir",
    "wizard.nodesql",
    "wizard.pipeline",
    "wizard.status",
    "wizard.checks.base",
    "wizard.checks.coordination",
    "wizard.checks.datadir",
    "wizard.checks.disk",
    "wizard.checks.facts",
    "wizard.checks.galera_state",
    "wizard.checks.names",
    "wizard.checks.network",
    "wizard.checks.software",
    "wizard.backups.catalog",
    "wizard.backups.health",
    "wizard.backups.pitr",
    "wizard.backups.prune",
    "wizard.backups.restore",
    "wizard.backups.take",
    "wizard.backups.verify",
    "wizard.crafter.sync_trust",
    "wizard.tls.expiry",
)


def catalogue() -> dict[str, dict[str, str]]:
    """name -> {"kind", "text"} of every root script, sorted by name (a deterministic bundle)."""
    for module in MODULES:
        importlib.import_module(module)
    return catalogue_of(SCRIPTS)
