"""Write a profile back into the YAML file it came from, keeping that file's comments and key order.

Saving a loaded profile used to rewrite the file from scratch: every default spelled out, keys in the
model's order, every comment gone.  :func:`merge_into` instead loads the file with ruamel.yaml's
round-trip loader and changes only what differs: a changed value is replaced in place (the comment on its
line stays), a setting the profile no longer has is removed, and a new setting is appended to its
section only when it differs from the model's default.
"""

from __future__ import annotations

import io
import os
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long value onto a second line
    return yaml


def _merge_map(old: CommentedMap, full: dict[str, Any], sparse: dict[str, Any]) -> None:
    for key in list(old):
        if key not in full or full[key] is None:
            del old[key]  # the profile no longer has it (e.g. redis.url after switching to Sentinels)
        else:
            old[key] = _merged(old[key], full[key], sparse.get(key))
    for key, value in sparse.items():
        if key not in old and value is not None:
            old[key] = value  # new and not the default: appended at the end of its section


def _merged(old: Any, full: Any, sparse: Any) -> Any:
    """`old` (from the file) changed to `full` (the whole new value); `sparse` is the new value without
    the model's defaults, the part worth adding where the file has nothing."""
    if isinstance(old, CommentedMap) and isinstance(full, dict):
        _merge_map(old, full, sparse if isinstance(sparse, dict) else {})
        return old
    if isinstance(old, CommentedSeq) and isinstance(full, list) and len(old) == len(full):
        sparse_items = sparse if isinstance(sparse, list) and len(sparse) == len(full) else [None] * len(full)
        for i, item in enumerate(full):
            old[i] = _merged(old[i], item, sparse_items[i])
        return old
    if _same(old, full):
        return old  # unchanged: keep its spelling (quotes, ~/ paths written as the person wrote them)
    return full


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new or (isinstance(old, bool) and isinstance(new, bool) and old == new)
    if isinstance(old, int | float) and isinstance(new, int | float):
        return float(old) == float(new)
    if isinstance(old, str) and isinstance(new, str):
        return old == new or os.path.expanduser(old) == new  # ~/.ssh/... as written, expanded by the model
    return str(old) == str(new) if old is not None and new is not None else old is new


def merge_into(original: str, full: dict[str, Any], sparse: dict[str, Any]) -> str:
    """The text of `original` (a YAML mapping) with the values of `full` (every setting, JSON-like),
    adding from `sparse` (the non-default settings) what the file lacks.  Raises ValueError when
    `original` is not a YAML mapping (then the caller writes the profile whole)."""
    yaml = _round_trip()
    doc = yaml.load(original)
    if not isinstance(doc, CommentedMap):
        raise ValueError("the file is not a YAML mapping of settings")
    _merge_map(doc, full, sparse)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
