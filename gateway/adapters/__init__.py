"""Upstream adapters: one per provider type, all behind the Upstream protocol of base.py.
Pure vocabulary lives in base.py and capabilities.py; the HTTP shells import aiohttp."""
