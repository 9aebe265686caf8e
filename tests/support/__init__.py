"""Shared test helpers: fake OpenAI upstreams and a gateway started in-process."""
