"""Every profile setting has a description, so the JSON Schema (and an editor's hover) explains it."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from wizard.profile import Profile


def fields(model: type[BaseModel], prefix: str = "", seen: set[type] | None = None) -> list[tuple[str, str]]:
    seen = seen if seen is not None else set()
    out = []
    for name, info in model.model_fields.items():
        out.append((prefix + name, info.description or ""))
        for t in (info.annotation, *typing.get_args(info.annotation)):
            for inner in (t, *typing.get_args(t)):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    seen.add(inner)
                    out += fields(inner, f"{prefix}{name}.", seen)
    return out


def test_every_setting_has_its_own_description() -> None:
    all_fields = fields(Profile)
    assert len(all_fields) > 60
    missing = [path for path, text in all_fields if not text]
    assert missing == []
    generic = [path for path, text in all_fields if text == "TCP port, 1-65535"]
    assert generic == [], "a port says which service listens on it"


def test_the_schema_carries_them() -> None:
    schema = Profile.model_json_schema()
    assert "systemd" in schema["$defs"]["ServiceSettings"]["properties"]["manager"]["description"]
    assert "e.g. 5" in schema["$defs"]["DNSSettings"]["properties"]["ttl"]["description"]
