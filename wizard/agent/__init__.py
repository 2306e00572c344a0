"""The node-side program: runs on each node's own python3 (3.9 or later), shipped as a zipapp.

Everything under ``wizard.agent`` uses the standard library only (plus redis-py where it talks to
Redis) and imports nothing else from ``wizard``: no pydantic, no Fabric, no Textual.  Modules:

* :mod:`wizard.agent.grastate`  reading and fixing Galera's ``grastate.dat``, parsing recovered positions
* :mod:`wizard.agent.election`  the pure bootstrap decision from the registered node states
"""

from __future__ import annotations
