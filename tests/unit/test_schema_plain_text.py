"""The JSON Schema's descriptions are shown to people (studio-cluster schema, an editor's hover, the wizard):
plain text, no reStructuredText markup (issue 11 newcomer findings).  Class docstrings become the
descriptions of the schema's $defs, so they are held to the same rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from wizard.profile import json_schema

MARKUP = re.compile(r"``|:[a-z]+(?::[a-z]+)?:`|`")  # ``literal``, :func:`role`, and `interpreted text`


def descriptions(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield path or "/", value
            else:
                yield from descriptions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from descriptions(value, f"{path}[{i}]")


def test_no_description_holds_markup() -> None:
    found = list(descriptions(json_schema()))
    assert len(found) > 50  # the walk reaches the fields
    marked = [f"{where}: {text!r}" for where, text in found if MARKUP.search(text)]
    assert not marked, "\n".join(marked)


def test_the_pattern_catches_what_it_is_for() -> None:
    for text in ("see ``store``", "see :func:`wizard.render`", "see :py:class:`X`", "run `backup list`"):
        assert MARKUP.search(text), text
    assert not MARKUP.search("port: 22, e.g. 10.0.0.11:26379 (HOST:PORT)")
