"""The HTTP layer: the aiohttp app, its middleware and one handler module per route group.
Only web/app.py picks concrete backends; handlers reach services through one AppKey."""
