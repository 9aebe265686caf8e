"""`gateway check-config` as a subprocess: the routing table it prints for a good file, and the
one-line error (exit code 2, no traceback) for each kind of bad routing configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # `-m gateway` from here runs this checkout's code

PROVIDERS = """\
providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", api_key: sk-x}
  azure-east: {type: azure, base_url: "https://azure.test", api_key: "", api_version: 2024-10-21}
  deepseek: {type: openai, base_url: "https://api.deepseek.com/v1", api_key: sk-y}
  anthropic: {type: anthropic, api_key: sk-ant}
  gemini: {type: gemini}
"""

GOOD = (
    PROVIDERS
    + """\
models:
  gpt-4o:
    deployments:
      - {provider: openai, model: gpt-4o, weight: 3}
      - {provider: azure-east, model: gpt-4o-2024, weight: 1}
    fallbacks: [gpt-4o-mini, deepseek/deepseek-chat]
  gpt-4o-mini: {provider: openai, model: gpt-4o-mini}
  "deepseek/*": {provider: deepseek}
  claude: {provider: anthropic, model: claude-sonnet-4-5, max_tokens: 8192}
  flash: {provider: gemini, model: gemini-2.5-flash}
routing: {max_attempts: 3, cooldown_failures: 2, cooldown_s: 10}
"""
)


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", str(path)],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT,
    )  # fmt: skip


def test_routing_table_shows_weights_fallbacks_and_wildcards(tmp_path):
    done = check(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("config.yaml: ok")
    table = {line.split()[0]: line for line in lines[1:]}
    gpt4o = table["gpt-4o"]
    assert "openai:gpt-4o x3 (openai)" in gpt4o
    assert "azure-east:gpt-4o-2024 x1 (azure, not configured)" in gpt4o
    assert "fallbacks: gpt-4o-mini, deepseek/deepseek-chat" in gpt4o
    assert "deepseek:<from name> (openai)" in table["deepseek/*"]
    assert "anthropic:claude-sonnet-4-5 (anthropic)" in table["claude"]
    assert "gemini:gemini-2.5-flash (gemini, not configured)" in table["flash"]
    assert table["routing:"] == (
        "routing: up to 3 attempts, backoff 0.05s doubling to 1.0s,"
        " cooldown 10.0s after 2 failures in a row"
    )


@pytest.mark.parametrize(
    ("models", "where", "reason"),
    [
        ("m: {provider: openai, wieght: 2}", "models.m.wieght", "unknown key"),
        (
            "m: {deployments: [{provider: openai}, {provider: ghost}]}",
            "models.m.deployments[1].provider",
            "unknown provider 'ghost'",
        ),
        ("m: {provider: openai, fallbacks: [zz]}", "models.m.fallbacks", "unknown fallback"),
        (
            'm: {provider: openai, fallbacks: ["ds/*"]}\n  "ds/*": {provider: deepseek}',
            "models.m.fallbacks",
            "unknown fallback model 'ds/*'",
        ),
        ("m: {provider: openai, fallbacks: [m]}", "models.m.fallbacks", "itself"),
        (
            "m: {deployments: [{provider: openai, weight: heavy}]}",
            "models.m.deployments[0].weight",
            "must be an integer",
        ),
        (
            "m: {deployments: [{provider: openai, weight: 0}]}",
            "models.m.deployments[0].weight",
            "must be >= 1",
        ),
        ("m: {deployments: []}", "models.m.deployments", "at least one"),
        ("m: {provider: openai, fallbacks: gpt}", "models.m.fallbacks", "must be a list"),
        ('"x/*": {provider: openai, model: y}', "models.x/*.model", "wildcard"),
    ],
)
def test_bad_routing_config_is_one_line_and_exit_2(tmp_path, models, where, reason):
    done = check(tmp_path, PROVIDERS + "models:\n  " + models + "\n")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith(f"gateway: {tmp_path / 'config.yaml'}: {where}: ")
    assert reason in lines[0]


@pytest.mark.parametrize(
    ("routing", "where"),
    [("{retries: 3}", "routing.retries"), ("{max_attempts: many}", "routing.max_attempts")],
)
def test_bad_routing_section_is_one_line_and_exit_2(tmp_path, routing, where):
    done = check(tmp_path, PROVIDERS + f"routing: {routing}\n")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert f": {where}: " in done.stderr


def test_check_config_shows_each_models_response_cache(tmp_path):
    text = GOOD + "cache: {ttl_s: 600}\n"
    text = text.replace(
        "flash: {provider: gemini, model: gemini-2.5-flash}",
        "flash: {provider: gemini, model: gemini-2.5-flash, cache: false}",
    )
    mini = "gpt-4o-mini: {provider: openai, model: gpt-4o-mini"
    text = text.replace(mini + "}", mini + ", cache: {ttl_s: 30}}")
    done = check(tmp_path, text)
    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert table["claude"].endswith("cache: ttl 600s, entries up to 1048576 bytes")
    assert table["gpt-4o-mini"].endswith("cache: ttl 30s, entries up to 1048576 bytes")
    assert "cache" not in table["flash"]


def test_mcp_servers_are_listed(tmp_path):
    done = check(tmp_path, GOOD + """\
mcp_servers:
  calc: {url: "http://127.0.0.1:9000/mcp", headers: {Authorization: "Bearer x"}}
  files: {command: python3, args: [-m, files_server], env: {ROOT: /srv}}
""")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("mcp server")]
    assert lines == [
        "mcp server calc              -> http http://127.0.0.1:9000/mcp",
        "mcp server files             -> stdio python3 -m files_server",
    ]


@pytest.mark.parametrize(
    ("server", "where", "reason"),
    [
        ("{}", "mcp_servers.calc", "either `url`"),
        ('{url: "http://x/mcp", command: y}', "mcp_servers.calc", "either `url`"),
        ("{url: ftp://x}", "mcp_servers.calc.url", "http"),
        ('{url: "http://x/mcp", args: [a]}', "mcp_servers.calc", "go with `command`"),
        ("{command: y, headers: {a: b}}", "mcp_servers.calc.headers", "go with `url`"),
        ("{command: y, port: 1}", "mcp_servers.calc.port", ""),
    ],
)
def test_bad_mcp_server_is_one_line_and_exit_2(tmp_path, server, where, reason):
    done = check(tmp_path, PROVIDERS + f"mcp_servers:\n  calc: {server}\n")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert f": {where}: " in done.stderr and reason in done.stderr


def test_an_mcp_server_name_holds_no_double_underscore(tmp_path):
    done = check(tmp_path, PROVIDERS + "mcp_servers:\n  my__calc: {command: y}\n")
    assert done.returncode == 2 and ": mcp_servers.my__calc: " in done.stderr
