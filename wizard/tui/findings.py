"""Settings the checks found out, offered as the value to use (pure logic, no Textual).

A check whose fix reads ``set services.manager: direct`` has detected something the profile should say
(here: the host does not boot systemd).  :func:`suggested_settings` turns a run's results into the
settings to offer; :func:`with_setting` writes one into a raw profile dict.  Only settings listed in
:data:`ADOPTABLE` are offered: a fix that names any other setting stays advice for a person.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any, Protocol

ADOPTABLE = {"services.manager": ("systemd", "direct")}
_SET_RE = re.compile(r"\bset (?P<path>[a-z_]+\.[a-z_]+): (?P<value>[A-Za-z0-9_./-]+)")


class _Result(Protocol):
    @property
    def fix(self) -> str: ...


def suggested_settings(results: Iterable[_Result]) -> dict[str, str]:
    """Dotted setting -> the value the checks found, e.g. ``{"services.manager": "direct"}``.

    When nodes disagree on the service manager, ``direct`` wins: it runs on any host, while ``systemd``
    fails on a host without it.
    """
    found: dict[str, set[str]] = {}
    for r in results:
        for m in _SET_RE.finditer(r.fix or ""):
            path, value = m.group("path"), m.group("value")
            if value in ADOPTABLE.get(path, ()):
                found.setdefault(path, set()).add(value)
    out = {}
    for path, values in found.items():
        out[path] = "direct" if path == "services.manager" and "direct" in values else sorted(values)[0]
    return out


def with_setting(data: dict[str, Any], path: str, value: str) -> dict[str, Any]:
    """A copy of the raw profile dict `data` with the dotted setting `path` set to `value`."""
    section, name = path.split(".", 1)
    out = copy.deepcopy(data)
    part = dict(out.get(section) or {})
    part[name] = value
    out[section] = part
    return out
