"""OpenAI-compatible AI gateway: keys, quotas, routing, byte-exact streaming, accounting."""
