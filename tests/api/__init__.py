"""API-level tests: the OpenAPI document against the routes, schemathesis against a live gateway,
and hand-written bad input for every route that takes some."""
