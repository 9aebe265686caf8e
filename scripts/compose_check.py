"""The host side of scripts/compose-check: what a user's client and an operator's Prometheus see
through the published 127.0.0.1 ports. Subcommands: chat (the `openai` SDK, JSON and stream),
prometheus (the gateway target `up` and a gateway metric), prometheus-at (a sample kept from
before a restart)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request

from openai import AuthenticationError, OpenAI


def chat(args: argparse.Namespace) -> None:
    client = OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=30)
    text = f"{args.text} (json)"
    # A key made by `gateway keys create` (another process) reaches the workers' key caches at
    # their next poll (auth.cache_refresh_s, 2 s): until then it is unknown to them.
    deadline = time.monotonic() + args.key_wait
    while True:
        try:
            answer = client.chat.completions.create(
                model=args.model, messages=[{"role": "user", "content": text}]
            )
            break
        except AuthenticationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    content = answer.choices[0].message.content or ""
    if text not in content or not answer.usage or not answer.usage.total_tokens:
        sys.exit(f"chat: unexpected answer {answer.model_dump_json()}")
    print(f"chat: {args.model} answered {content!r} ({answer.usage.total_tokens} tokens)")
    if args.json_only:
        return
    text = f"{args.text} (stream)"
    stream = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, chunks, usage = [], 0, None
    for chunk in stream:
        chunks += 1
        usage = chunk.usage or usage
        parts.extend(c.delta.content or "" for c in chunk.choices)
    streamed = "".join(parts)
    if text not in streamed or usage is None:
        sys.exit(f"stream: unexpected answer {streamed!r} (usage {usage})")
    print(f"stream: {chunks} chunks, {streamed!r} ({usage.total_tokens} tokens)")


def _query(base: str, promql: str, at: float | None = None) -> list[dict]:
    params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
    url = f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{promql}: {body}")
    return list(body["data"]["result"])


def _gateway_targets(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as response:
        body = json.load(response)
    targets = body["data"]["activeTargets"]
    return [t for t in targets if t["labels"].get("job") == "gateway"]


def prometheus(args: argparse.Namespace) -> None:
    """Waits (bounded) until the gateway target is up and `metric` sums to at least `minimum`."""
    deadline, state = time.monotonic() + args.timeout, "no answer yet"
    while time.monotonic() < deadline:
        try:
            targets = _gateway_targets(args.url)
            healthy = [t for t in targets if t["health"] == "up"]
            result = _query(args.url, f"sum({args.metric})")
            value = float(result[0]["value"][1]) if result else 0.0
            state = (
                f"targets {[(t['scrapeUrl'], t['health']) for t in targets]}, "
                f"sum({args.metric}) = {value:g}"
            )
            if healthy and value >= args.minimum:
                print(f"prometheus: {state}")
                return
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            state = f"{type(error).__name__}: {error}"
        time.sleep(2)
    sys.exit(f"prometheus: not there within {args.timeout:g} s ({state})")


def prometheus_at(args: argparse.Namespace) -> None:
    """The TSDB still answers for a moment before the restart: its volume kept the samples."""
    result = _query(args.url, args.query, at=args.time)
    if not result:
        sys.exit(f"prometheus: nothing for {args.query} at {args.time} (data lost)")
    print(f"prometheus: {args.query} at {time.strftime('%H:%M:%S', time.gmtime(args.time))}Z "
          f"= {result[0]['value'][1]} (kept)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("chat")
    c.add_argument("--base-url", required=True)
    c.add_argument("--key", required=True)
    c.add_argument("--model", default="echo")
    c.add_argument("--text", default="hello from compose-check")
    c.add_argument("--json-only", action="store_true")
    c.add_argument("--key-wait", type=float, default=10, help="seconds a new key may take")
    c.set_defaults(run=chat)
    p = sub.add_parser("prometheus")
    p.add_argument("--url", required=True)
    p.add_argument("--metric", default='gateway_requests_total{job="gateway"}')
    p.add_argument("--minimum", type=float, default=1)
    p.add_argument("--timeout", type=float, default=90)
    p.set_defaults(run=prometheus)
    a = sub.add_parser("prometheus-at")
    a.add_argument("--url", required=True)
    a.add_argument("--query", default='up{job="gateway"} == 1')
    a.add_argument("--time", type=float, required=True)
    a.set_defaults(run=prometheus_at)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
