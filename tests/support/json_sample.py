"""A value that follows a JSON Schema, as a model constrained to that schema answers: what the
fakes give for Anthropic's forced tool and Gemini's JSON mode. Covers what pydantic emits."""

from __future__ import annotations

from typing import Any

_SCALARS: dict[str, Any] = {
    "string": "text",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "null": None,
}


def sample(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """A value valid under `schema` (`$ref`s resolve against `root`, pydantic's `$defs`)."""
    if not isinstance(schema, dict):
        return {}
    root = root if root is not None else schema
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        defs = root.get("$defs") or root.get("definitions") or {}
        return sample(defs.get(name, {}), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample(schema[key][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: sample(sub, root) for name, sub in properties.items()}
    if kind == "array":
        return [sample(schema.get("items", {}), root)]
    return _SCALARS.get(kind, "text")
