"""The `anthropic` provider: OpenAI chat completions to Anthropic's Messages API and back.
request.py builds the upstream body, answer.py reads answers and errors, stream.py reads streams."""

from .answer import (
    anthropic_to_chat,
    error_to_openai,
    finish_reason,
    message_to_chat,
    openai_usage,
)
from .request import DEFAULT_MAX_TOKENS, OUTPUT_TOOL, chat_to_anthropic, output_schema
from .stream import AnthropicStream

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "OUTPUT_TOOL",
    "AnthropicStream",
    "anthropic_to_chat",
    "chat_to_anthropic",
    "error_to_openai",
    "finish_reason",
    "message_to_chat",
    "openai_usage",
    "output_schema",
]
