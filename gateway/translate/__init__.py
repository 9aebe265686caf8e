"""Wire-format translators between OpenAI's chat completions and other APIs.
Pure modules: bytes or dicts in, bytes or dicts out; no I/O, no aiohttp, no clock of their own."""
