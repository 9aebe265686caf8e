"""Run the schemathesis CLI against a live gateway and read back what it sent and got.
The CLI runs as a subprocess (its own process, sync requests), so the gateway keeps its loop."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.gateway import ADMIN_KEY, USER_KEY

ROOT = Path(__file__).resolve().parents[2]
HOOKS = "tests.api.schemathesis_hooks"
RUN_TIMEOUT_S = 300.0  # a bound on a hung run; a normal one takes 30-110 s on a busy machine


@dataclass
class Exchange:
    """One request the fuzzer sent and the response it got."""

    method: str
    path: str
    status: int
    body: bytes


@dataclass
class FuzzReport:
    """What one run did, read from its NDJSON event log."""

    cases_by_operation: collections.Counter = field(default_factory=collections.Counter)
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def statuses(self) -> collections.Counter:
        return collections.Counter(e.status for e in self.exchanges)

    def json_bodies(self, method: str, path: str, status: int) -> list[dict]:
        return [
            json.loads(e.body)
            for e in self.exchanges
            if e.method == method and e.path == path and e.status == status
        ]

    def matching(self, method: str, prefix: str, status: int) -> list[Exchange]:
        return [
            e
            for e in self.exchanges
            if e.method == method and e.path.startswith(prefix) and e.status == status
        ]


def read_report(path: Path) -> FuzzReport:
    """Cases per operation and every exchange, deduplicated by case id."""
    report = FuzzReport()
    exchanges: dict[str, Exchange] = {}
    with path.open() as lines:
        for line in lines:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if finished is None:
                continue
            recorder = finished["recorder"]
            report.cases_by_operation[recorder["label"]] += len(recorder.get("cases", {}))
            for case_id, item in recorder.get("interactions", {}).items():
                response = item.get("response")
                if response is None:
                    continue
                content = (response.get("content") or {}).get("$base64", "")
                exchanges[case_id] = Exchange(
                    method=item["request"]["method"],
                    path=urlsplit(item["request"]["uri"]).path,
                    status=response["status_code"],
                    body=base64.b64decode(content),
                )
    report.exchanges = list(exchanges.values())
    return report


def write_config(directory: Path) -> Path:
    """The CLI config: one bearer token per security scheme, our checks, no example database."""
    path = directory / "schemathesis.toml"
    path.write_text(
        f'hooks = "{HOOKS}"\n'
        f'[auth.openapi.UserKey]\nbearer = "{USER_KEY}"\n'
        f'[auth.openapi.AnthropicKey]\napi_key = "{USER_KEY}"\n'
        f'[auth.openapi.AdminKey]\nbearer = "{ADMIN_KEY}"\n'
        '[generation]\ndatabase = "none"\n'
    )
    return path


async def run_schemathesis(
    base_url: str,
    directory: Path,
    *,
    max_examples: int,
    seed: int,
    exclude: Iterable[str] = (),
) -> tuple[int, str, FuzzReport]:
    """Every phase (examples, coverage, fuzzing, stateful) and every check, bounded in examples;
    `exclude` names operations ("POST /v1/messages") to leave out."""
    report_path = directory / "events.ndjson"
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(write_config(directory)),
        "run", f"{base_url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(max_examples),
        "--seed", str(seed),
        "--workers", "1",
        "--request-timeout", "10",
        "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(report_path),
    ]  # fmt: skip
    for label in exclude:
        command += ["--exclude-name", label]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=directory,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    report = read_report(report_path) if report_path.exists() else FuzzReport()
    return process.returncode or 0, text, report
