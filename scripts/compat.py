"""The client x route matrix behind scripts/compat: runs the e2e tests that drive each real
client through the gateway (pytest, junit XML) and prints which route worked with which version.

Routes: relayed (the provider speaks the client's API), translated (another API, e.g. Claude
Code to an OpenAI-compatible model), bridged (Responses through chat to Anthropic), chat-only
(Responses from an OpenAI-compatible server that speaks only chat: `responses: bridge`), cloud
(the Anthropic front door to Claude on Bedrock and on Vertex), mcp (the client's MCP tools served
by the gateway's /mcp).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import agents_sdk, claude_code, codex, vercel_ai  # noqa: E402

ROUTES = ("relayed", "translated", "bridged", "chat-only", "cloud", "mcp")
E2E = "tests/e2e"
# client -> route -> the tests of that cell: (test file, test name, parameter id or "" for all)
Case = tuple[str, str, str]
CASES: dict[str, dict[str, list[Case]]] = {
    "Claude Code": {
        "relayed": [
            ("test_claude_code.py", "test_claude_code_through_the_gateway_to_anthropic", ""),
            ("test_claude_code_agents.py", "test_claude_code_runs_a_tool_turn", "claude-sonnet"),
        ],
        "translated": [
            ("test_claude_code.py", "test_claude_code_through_the_gateway_to_an_openai_model", ""),
            ("test_claude_code_agents.py", "test_claude_code_runs_a_tool_turn", "fake-model"),
            ("test_claude_code_agents.py", "test_claude_code_runs_a_tool_turn", "gemini-flash"),
        ],
        "cloud": [
            ("test_claude_code_cloud.py", "test_claude_code_to_claude_on_bedrock", ""),
            ("test_claude_code_cloud.py", "test_claude_code_to_claude_on_vertex", ""),
        ],
        "mcp": [("test_mcp_agents.py", "test_claude_code_calls_a_tool_through_the_gateway", "")],
    },
    "Codex CLI": {
        "relayed": [("test_codex.py", "test_codex_exec_runs_a_tool_turn", "fake-model")],
        "bridged": [("test_codex.py", "test_codex_exec_runs_a_tool_turn", "claude-sonnet")],
        "chat-only": [("test_codex.py", "test_codex_exec_runs_a_tool_turn", "local-llm")],
        "mcp": [("test_mcp_agents.py", "test_codex_calls_a_tool_through_the_gateway", "")],
    },
    "openai SDK": {
        "relayed": [("test_responses.py", "test_relayed_stream_through_the_stream_helper", "")],
        "translated": [("test_structured_output.py", "test_chat_parse_with_a_pydantic_model", "")],
        "bridged": [(
            "test_responses_bridge.py",
            "test_namespace_tools_are_flattened_and_their_calls_mapped_back",
            "",
        )],
        "chat-only": [(
            "test_responses_bridge.py",
            "test_a_chat_only_server_serves_responses_through_the_bridge",
            "",
        )],
    },
    "Vercel AI SDK": {
        "relayed": [("test_vercel_ai.py", "test_a_tool_turn", "chat-fake-model"),
                    ("test_vercel_ai.py", "test_a_tool_turn", "responses-fake-model")],
        "translated": [("test_vercel_ai.py", "test_a_tool_turn", "chat-claude-sonnet")],
        "bridged": [("test_vercel_ai.py", "test_a_tool_turn", "responses-claude-sonnet")],
        "chat-only": [("test_vercel_ai.py", "test_a_tool_turn", "responses-local-llm")],
    },
    "OpenAI Agents SDK": {
        "relayed": [("test_agents_sdk.py", "test_an_agent_tool_turn", "chat-fake-model"),
                    ("test_agents_sdk.py", "test_an_agent_tool_turn", "responses-fake-model")],
        "translated": [("test_agents_sdk.py", "test_an_agent_tool_turn", "chat-claude-sonnet")],
        "bridged": [("test_agents_sdk.py", "test_an_agent_tool_turn", "responses-claude-sonnet")],
        "chat-only": [("test_agents_sdk.py", "test_an_agent_tool_turn", "responses-local-llm")],
    },
    "anthropic SDK": {
        "relayed": [(
            "test_lenient_relays.py",
            "test_a_system_message_inside_messages_is_relayed_to_anthropic",
            "",
        )],
        "translated": [(
            "test_lenient_relays.py",
            "test_the_system_message_keeps_its_place_when_translated_to_chat",
            "",
        )],
    },
}  # fmt: skip


def versions(latest: bool) -> dict[str, str]:
    """The version each client runs at (the npm CLIs at their newest with `latest`)."""
    return {
        "Claude Code": claude_code.latest_version() if latest else _pinned_claude_code(),
        "Codex CLI": codex.latest_version() if latest else codex.PINNED_VERSION,
        "Vercel AI SDK": vercel_ai.latest_version() if latest else vercel_ai.chosen_version(),
        "OpenAI Agents SDK": agents_sdk.latest_version() if latest else agents_sdk.chosen_version(),
        "openai SDK": version("openai"),
        "anthropic SDK": version("anthropic"),
    }


def _pinned_claude_code() -> str:
    return os.environ.get(claude_code.VERSION_ENV) or claude_code.PINNED_VERSION


def run(chosen: dict[str, str]) -> dict[str, str]:
    """pytest over every case; test name (with parameters) -> passed | failed | skipped."""
    cases = [case for routes in CASES.values() for cell in routes.values() for case in cell]
    tests = sorted({f"{E2E}/{file}::{name}" for file, name, _ in cases})
    env = {
        **os.environ,
        claude_code.VERSION_ENV: chosen["Claude Code"],
        codex.VERSION_ENV: chosen["Codex CLI"],
        vercel_ai.VERSION_ENV: chosen["Vercel AI SDK"],
        agents_sdk.VERSION_ENV: chosen["OpenAI Agents SDK"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
               f"--junitxml={report}", *tests]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        outcomes: dict[str, str] = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            outcome = "failed" if kinds & {"failure", "error"} else "passed"
            outcomes[case.get("name", "")] = "skipped" if "skipped" in kinds else outcome
        return outcomes


def cell(outcomes: dict[str, str], cases: list[Case]) -> str:
    """ok, FAIL or skip for the tests of one cell (all of them must pass)."""
    got = [
        outcome
        for _, name, param in cases
        for test, outcome in outcomes.items()
        if test.split("[")[0] == name and param in test
    ]
    if not got:
        return "-"
    if "failed" in got:
        return "FAIL"
    return "skip" if "skipped" in got else "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latest", action="store_true", help="the newest npm CLI versions")
    args = parser.parse_args()
    chosen = versions(args.latest)
    outcomes = run(chosen)
    width = max(len(f"{c} {v}") for c, v in chosen.items())
    print(f"\n{'client'.ljust(width)} | " + " | ".join(r.ljust(10) for r in ROUTES))
    print("-" * width + "-|-" + "-|-".join("-" * 10 for _ in ROUTES))
    failed = False
    for client, routes in CASES.items():
        cells = []
        for route in ROUTES:
            cases = routes.get(route)
            mark = "-" if cases is None else cell(outcomes, cases)
            failed = failed or mark == "FAIL"
            cells.append(mark.ljust(10))
        print(f"{client} {chosen[client]}".ljust(width) + " | " + " | ".join(cells))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
