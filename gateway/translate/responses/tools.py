"""Responses tools on the chat bridge: function tools as chat's, `namespace` tools flattened into
functions named `<namespace>__<name>`, hosted tools a chat provider cannot run left out. Pure.

Rules:
- A namespace's function tools become chat functions named ``<namespace>__<name>``; a call of
  one comes back as a function_call item with the tool's own ``name`` and its ``namespace``,
  and a function_call item the client sends back with a ``namespace`` is qualified again.
- Hosted tools (web_search, file_search, code_interpreter, ...) run on OpenAI's side only: they
  are left out and named (the gateway puts them in ``x-gateway-dropped-tools``), or refused
  with 400 when the model says ``hosted_tools: reject``.
- Any other tool type (custom/freeform, ...) is 400: the model could not call it as described.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidRequest, clip

SEPARATOR = "__"
HOSTED = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_2025_08_26",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use",
        "computer_use_preview",
        "mcp",
        "local_shell",
        "shell",
        "tool_search",
    }
)


@dataclass(slots=True)
class ToolPlan:
    """The chat tools for a Responses ``tools`` list and what became of the rest."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # hosted tool types left out, in order
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # chat name -> (ns, name)


def qualified(namespace: str, name: str) -> str:
    """The chat function name of tool `name` in `namespace`."""
    return f"{namespace}{SEPARATOR}{name}"


def plan_tools(tools: Any, reject_hosted: bool = False) -> ToolPlan:
    """The chat side of a Responses ``tools`` list; InvalidRequest naming what cannot be."""
    if not isinstance(tools, list):
        raise _invalid("tools", "Invalid type for `tools`: expected an array.", "invalid_type")
    plan = ToolPlan()
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _invalid(
                param, f"Invalid type for `{param}`: expected an object.", "invalid_type"
            )
        kind = tool.get("type")
        if kind == "function":
            plan.functions.append(_function(tool, param, None))
        elif kind == "namespace":
            namespace = _name(tool, param)
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise _invalid(f"{param}.tools", f"`{param}.tools` must be an array.")
            for j, member in enumerate(inner):
                where = f"{param}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type", "function") != "function":
                    raise _unsupported(f"{where}.type", "Namespaces may hold function tools only.")
                function = _function(member, where, namespace)
                plan.namespaced[function["function"]["name"]] = (namespace, member["name"])
                plan.functions.append(function)
        elif isinstance(kind, str) and kind in HOSTED and not reject_hosted:
            plan.dropped.append(kind)
        else:
            hosted = isinstance(kind, str) and kind in HOSTED
            raise _unsupported(
                f"{param}.type",
                f"Tools of type `{clip(kind)}` are not supported for this model; only `function` "
                + ("tools are (its hosted tools are refused)." if hosted else "tools are."),
            )
    return plan


def namespaced_names(tools: Any) -> dict[str, tuple[str, str]]:
    """Chat name -> (namespace, name) of a ``tools`` list plan_tools() accepted (never raises)."""
    names: dict[str, tuple[str, str]] = {}
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or tool.get("type") != "namespace":
            continue
        namespace = tool.get("name")
        for member in tool.get("tools") or ():
            name = member.get("name") if isinstance(member, dict) else None
            if isinstance(namespace, str) and isinstance(name, str):
                names[qualified(namespace, name)] = (namespace, name)
    return names


def _function(tool: dict[str, Any], param: str, namespace: str | None) -> dict[str, Any]:
    name = _name(tool, param)
    function: dict[str, Any] = {"name": qualified(namespace, name) if namespace else name}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if isinstance(name, str):  # an empty one is the provider's to refuse, as on a relay
        return name
    if name is None:
        raise _invalid(
            f"{param}.name",
            f"Missing required parameter: `{param}.name`.",
            "missing_required_parameter",
        )
    raise _invalid(
        f"{param}.name", f"Invalid type for `{param}.name`: expected a string.", "invalid_type"
    )


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")
