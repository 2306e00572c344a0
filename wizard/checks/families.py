"""Importing this module registers every check family (one module each)."""

from wizard.checks import (  # noqa: F401
    clock,
    coordination,
    crafter,
    datadir,
    disk,
    galera_state,
    names,
    network,
    services,
    software,
    ssh,
)
