"""Rules for profile values that reach a remote shell, a remote path or a rendered file on a node.

Every remote command quotes its words (:func:`wizard.remote.sh`), so a value never *runs*; but a value such
as ``$(touch x)`` or ``;touch x`` still became a literal junk directory on the hosts, and a path lands in
MariaDB's option files and in shell scripts MariaDB's own SST tooling reads.  These functions decide what a
valid value is, so that what is valid reaches the node exactly as typed and means there what it means here.

Each raises ValueError with a message that says what is wrong and how to fix it (pydantic prefixes the
field's name).  All are pure functions of their argument.

* :func:`remote_path` - an absolute path: ``/`` first, no control character (NUL, newline, tab, ...), at
  most :data:`PATH_MAX` characters and :data:`NAME_MAX` per component, and only the characters
  :data:`PATH_CHARS` (letters, digits, ``. _ - + @ % , : = ~`` and ``/``): a space, quote, ``$``, ``;``,
  ``#``, ``*`` or backslash would change meaning in an option file or a script on the node.
* :func:`unit_name` - a systemd service unit, as systemd.unit(5) names it: ``NAME``, ``NAME.service``,
  ``NAME@INSTANCE`` or ``NAME@INSTANCE.service``; NAME from ASCII letters, digits and ``: - _ . \\``,
  INSTANCE the same plus ``@``, the whole name (with ``.service``) at most 255 characters; not starting
  with ``-`` (systemctl would read it as an option).
* :func:`bounded_text` - a length limit that says the length.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

PATH_MAX = 4095  # Linux PATH_MAX (4096) less the terminating NUL
NAME_MAX = 255  # one path component
UNIT_NAME_MAX = 255  # systemd's UNIT_NAME_MAX (256) less the terminating NUL
PATH_CHARS = "letters, digits, '/', and . _ - + @ % , : = ~"
_PATH_RE = re.compile(r"[A-Za-z0-9/._+@%,:=~-]*")
_UNIT_PREFIX_RE = re.compile(r"[A-Za-z0-9:_.\\-]+")
_UNIT_INSTANCE_RE = re.compile(r"[A-Za-z0-9:_.\\@-]+")


def control_character(value: str) -> str | None:
    """The first control character of `value` as ``U+000A (line feed)``-style text, or None."""
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            name = {"\x00": "NUL", "\n": "line feed", "\r": "carriage return", "\t": "tab"}.get(ch)
            return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")
    return None


def _shown(value: str, limit: int = 60) -> str:
    text = value if len(value) <= limit else value[:limit] + "..."
    return repr(text)


def bounded_text(value: str, limit: int, example: str) -> str:
    """`value` when it has at most `limit` characters; else ValueError saying its length and the limit."""
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; at most {limit} are allowed: shorten it (e.g. {example})")
    return value


def remote_path(value: Path | str, example: str = "/var/lib/mysql") -> Path:
    """`value` as a path when it is a valid absolute path on a node (see the module docstring).

    Raises ValueError naming the problem and the fix; `example` is a valid value shown in the message."""
    text = str(value)
    bad = control_character(text)
    if bad is not None:
        raise ValueError(f"holds the control character {bad}; a path on a node is one line of text: remove it "
                         f"(e.g. {example})")
    if len(text) > PATH_MAX:
        raise ValueError(f"is {len(text)} characters long; a path may have at most {PATH_MAX}: shorten it "
                         f"(e.g. {example})")
    if not text.startswith("/"):
        raise ValueError(f"{_shown(text)} is not an absolute path; start it with '/' (e.g. {example})")
    if not _PATH_RE.fullmatch(text):
        odd = next(ch for ch in text if not _PATH_RE.fullmatch(ch))
        raise ValueError(f"{_shown(text)} holds {odd!r}, which a path on a node may not hold (it lands in option "
                         f"files and scripts there); use only {PATH_CHARS} (e.g. {example})")
    long_part = next((p for p in text.split("/") if len(p) > NAME_MAX), None)
    if long_part is not None:
        raise ValueError(f"a component of this path is {len(long_part)} characters long; each may have at most "
                         f"{NAME_MAX}: shorten it (e.g. {example})")
    return Path(text)


def unit_name(value: str, example: str = "mariadb") -> str:
    """`value` when it names a systemd service unit (see the module docstring); else ValueError."""
    bad = control_character(value)
    if bad is not None:
        raise ValueError(f"holds the control character {bad}; remove it (a unit name is e.g. {example})")
    full = value if value.endswith(".service") else value + ".service"
    if len(full) > UNIT_NAME_MAX:
        raise ValueError(f"is {len(value)} characters long; a systemd unit name may have at most {UNIT_NAME_MAX} "
                         f"with its .service suffix: shorten it (e.g. {example})")
    stem = full.removesuffix(".service")
    prefix, at, instance = stem.partition("@")
    if not prefix or (at and not instance):
        raise ValueError(f"{_shown(value)} is not a systemd unit name; give NAME, NAME.service or NAME@INSTANCE "
                         f"(systemd.unit(5)), e.g. {example}")
    if prefix.startswith("-"):
        raise ValueError(f"{_shown(value)} starts with '-', which systemctl reads as an option; use e.g. {example}")
    if not _UNIT_PREFIX_RE.fullmatch(prefix) or (at and not _UNIT_INSTANCE_RE.fullmatch(instance)):
        where = instance if at and not _UNIT_INSTANCE_RE.fullmatch(instance) else prefix
        pattern = _UNIT_INSTANCE_RE if where is instance else _UNIT_PREFIX_RE
        odd = next(ch for ch in where if not pattern.fullmatch(ch))
        raise ValueError(f"{_shown(value)} holds {odd!r}, which systemd does not allow in a unit name; use ASCII "
                         f"letters, digits and : - _ . \\ (and one '@' before an instance), e.g. {example}")
    if "." in stem and not value.endswith(".service"):
        raise ValueError(f"{_shown(value)} is not a service unit; give the service's name, e.g. {example} or "
                         f"{example}.service")
    return value
