"""One OpenAI Agents SDK tool turn against the gateway, run in the SDK's own venv (see
agents_sdk.py): the model calls `exec_command`, the tool answers "compat-ok", the model answers.
Prints {"text": final output}. Env: BASE_URL, API_KEY, MODEL, API (chat | responses), STREAM."""

import asyncio
import json
import os

from agents import (  # type: ignore[import-not-found]
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI


@function_tool
def exec_command(cmd: str) -> str:
    """Run a shell command."""
    return "compat-ok"


async def main() -> None:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"])
    name = os.environ["MODEL"]
    model = (
        OpenAIResponsesModel(name, client)
        if os.environ["API"] == "responses"
        else OpenAIChatCompletionsModel(name, client)
    )
    agent = Agent(name="compat", instructions="Use your tools.", tools=[exec_command], model=model)
    prompt = "Run the check command."
    if os.environ.get("STREAM") == "1":
        streamed = Runner.run_streamed(agent, prompt)
        async for _ in streamed.stream_events():
            pass
        text = streamed.final_output
    else:
        text = (await Runner.run(agent, prompt)).final_output
    print(json.dumps({"text": text}))


asyncio.run(main())
