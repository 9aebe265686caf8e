"""The Responses bridge's tools (translate/responses/tools.py): namespace tools flattened, hosted
tools left out and named or refused, other types refused; the names mapped back."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.translate.responses import ResponseContext, chat_to_response, responses_to_chat
from gateway.translate.responses.tools import namespaced_names, plan_tools

SPAWN = {"type": "function", "name": "spawn", "parameters": {"type": "object"}}
TOOLS = [
    {"type": "function", "name": "shell", "description": "Run"},
    {"type": "namespace", "name": "agents", "tools": [SPAWN, {**SPAWN, "name": "wait"}]},
    {"type": "web_search"},
    {"type": "image_generation"},
]


def test_namespaces_are_flattened_and_hosted_tools_left_out_in_order() -> None:
    plan = plan_tools(TOOLS)
    assert [f["function"]["name"] for f in plan.functions] == ["shell", "agents__spawn",
                                                               "agents__wait"]  # fmt: skip
    assert plan.dropped == ["web_search", "image_generation"]
    assert plan.namespaced == {"agents__spawn": ("agents", "spawn"),
                               "agents__wait": ("agents", "wait")}  # fmt: skip
    assert namespaced_names(TOOLS) == plan.namespaced


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "web_search"}], "tools[0].type"),  # with reject_hosted
        ([{"type": "custom", "name": "apply_patch"}], "tools[0].type"),
        ([{"type": "namespace", "name": "a", "tools": [{"type": "web_search"}]}],
         "tools[0].tools[0].type"),
        ([{"type": "namespace", "name": "a"}], "tools[0].tools"),
    ],
)  # fmt: skip
def test_what_a_chat_provider_cannot_call_is_refused(tools: list, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_tools(tools, reject_hosted=True)
    assert caught.value.param == param


def test_calls_come_back_with_their_namespace_and_go_out_qualified() -> None:
    body = {"model": "m", "tools": TOOLS, "input": [
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c1", "name": "spawn", "namespace": "agents",
         "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]}  # fmt: skip
    chat = responses_to_chat(body, [])
    assert chat["messages"][1]["tool_calls"][0]["function"]["name"] == "agents__spawn"
    ctx = ResponseContext.from_request(body, response_id="resp_1", model="m", created_at=1)
    call = {"id": "c2", "type": "function", "function": {"name": "agents__wait", "arguments": "{}"}}
    answer = {"choices": [{"index": 0, "finish_reason": "tool_calls",
                           "message": {"role": "assistant", "content": None,
                                       "tool_calls": [call]}}]}  # fmt: skip
    [item] = chat_to_response(orjson.dumps(answer), ctx)["output"]
    assert (item["name"], item["namespace"]) == ("wait", "agents")
