"""The `bedrock` provider: OpenAI chat completions to Bedrock's Converse API and back, Claude's
own events out of InvokeModelWithResponseStream, and embeddings through InvokeModel."""

from .answer import converse_to_chat, error_message, error_to_openai
from .request import anthropic_to_converse, chat_to_converse
from .stream import ConverseStream, EventTranslator, InvokeStream

__all__ = [
    "ConverseStream",
    "EventTranslator",
    "InvokeStream",
    "anthropic_to_converse",
    "chat_to_converse",
    "converse_to_chat",
    "error_message",
    "error_to_openai",
]
