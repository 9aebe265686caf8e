"""The governance part of the OpenAPI document (SPEC 10): key scopes, user budgets, teams and
spend under /admin; `governance_paths()` and `governance_schemas(tier)` join the rest in build."""

from __future__ import annotations

from ..access.governance_fields import (
    BUDGET_LIMIT,
    METADATA_MAX_BYTES,
    MODEL_NAME_MAX,
    MODELS_MAX,
    PARALLEL_MAX,
    RPM_MAX,
    TEAM_ID_PATTERN,
    TPD_MAX,
    UNIX_MAX,
)
from ..errors import (
    Conflict,
    InvalidApiKey,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
)
from ..store.base import BUDGET_PERIODS, SPEND_GROUPS
from .shapes import (
    INT,
    STR,
    TEXT,
    UNIX,
    Schema,
    body,
    const,
    error,
    header_refs,
    list_of,
    nullable,
    obj,
    ok,
    op,
    param,
    record,
    ref,
)

ADMIN: list[dict[str, list[str]]] = [{"AdminKey": []}]
BAD_FIELD = ["invalid_request", "missing_required_parameter", "invalid_type", "invalid_value"]
BAD_BODY = [*BAD_FIELD, "unknown_parameter"]
UNAUTHORIZED = error(InvalidApiKey, "Missing or wrong admin key.")
DISABLED = "The admin API is disabled (empty `auth.admin_key`), or"
MALFORMED = error(
    InvalidRequest,
    "Malformed JSON or a bad field (`param` names it): a budget without `budget_period`, an "
    "unknown `team`, ...",
    BAD_BODY,
)
TOO_LARGE = error(RequestTooLarge, "The body is larger than `server.max_body_bytes`.")
DB_503 = error(ServiceUnavailable, "The database is unavailable (`service_unavailable`).")
NUL_400 = error(InvalidRequest, "NUL in the URL.", ["invalid_value"])
DAY: Schema = {"type": "string", "format": "date"}

# Request fields.
MONEY_IN: Schema = {
    "anyOf": [
        {"type": "number", "minimum": 0, "exclusiveMaximum": BUDGET_LIMIT},
        {"type": "string", "pattern": r"^\d{1,11}(\.\d{1,9})?$"},
        {"type": "null"},
    ],
    "description": "USD: a number (rounded to 9 decimals) or an exact decimal string; needs "
    "`budget_period`. Null: no budget.",
}
PERIOD: Schema = {
    "type": ["string", "null"],
    "enum": [*BUDGET_PERIODS, None],
    "description": "UTC calendar periods; weeks start on Monday. `total` never resets.",
}
MODELS_IN: Schema = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": MODELS_MAX,
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": MODEL_NAME_MAX,
        "pattern": r"^[^*\u0000]+(/\*)?$",
    },
    "description": "Public model names, or `prefix/*` for every model under a prefix. "
    "Null: every model.",
}
MCP_TOOLS_IN: Schema = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": MODELS_MAX,
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": MODEL_NAME_MAX,
        "pattern": r"^[^*\u0000]*\*?$",
    },
    "description": "MCP tools as `<server>__<tool>`, or a name ending in `*` (`server__*`) for"
    " every tool it starts. Null: every tool.",
}
LIMIT_RPM: Schema = {"type": ["integer", "null"], "minimum": 0, "maximum": RPM_MAX}
LIMIT_TPD: Schema = {"type": ["integer", "null"], "minimum": 0, "maximum": TPD_MAX}
PARALLEL_IN: Schema = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": PARALLEL_MAX,
    "description": "Requests in flight at once, across all gateway processes sharing the"
    " limiter (more get 429 `parallel_requests_exceeded`); 0 or null: no cap.",
}
TEAM_REF: Schema = {
    "type": ["string", "null"],
    "pattern": TEAM_ID_PATTERN,
    "description": "The id of an existing team (else 400 naming `team`).",
}
EXPIRES_IN: Schema = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": 0, "maximum": UNIX_MAX},
        {"type": "null"},
    ],
    "description": "An RFC 3339 date-time or Unix seconds; afterwards the key gets 401 "
    "`expired_api_key`. Null: never.",
}
METADATA: Schema = {
    "type": ["object", "null"],
    "description": f"Any JSON object of at most {METADATA_MAX_BYTES} bytes; logged with each "
    "request of the key.",
}
NAME: Schema = nullable({**TEXT, "maxLength": 128})
# Response fields.
MONEY_OUT: Schema = {
    "type": ["string", "null"],
    "pattern": r"^\d+(\.\d+)?$",
    "description": "USD, exact decimal text.",
}
COST: Schema = {"type": "string", "pattern": r"^\d+(\.\d+)?$", "description": "USD, exact."}
SIGNED_COST: Schema = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "USD."}
# A budget needs its period: in a create, a quota, or a change that sets either of them.
NEEDS_PERIOD: Schema = {
    "if": {
        "properties": {"max_budget_usd": {"not": {"type": "null"}}},
        "required": ["max_budget_usd"],
    },
    "then": {"properties": {"budget_period": {"type": "string"}}, "required": ["budget_period"]},
}
# PATCH leaving a budget without a period (none stored, or the stored one cleared).
NO_PERIOD_409: Schema = error(
    Conflict, "The change would leave a budget without a budget_period.", ["budget_period_required"]
)
# A change (PATCH) sets only what it sends: a budget alone keeps the stored period (409 when none
# is stored); sent together, a budget's period must not be null.
PERIOD_IF_SENT: Schema = {
    "if": {
        "properties": {"max_budget_usd": {"not": {"type": "null"}}},
        "required": ["max_budget_usd", "budget_period"],
    },
    "then": {"properties": {"budget_period": {"type": "string"}}},
}


def _scopes() -> dict[str, Schema]:
    return {
        "models": MODELS_IN,
        "expires_at": EXPIRES_IN,
        "rpm": LIMIT_RPM,
        "tpd": LIMIT_TPD,
        "max_budget_usd": MONEY_IN,
        "budget_period": PERIOD,
        "team": TEAM_REF,
        "metadata": METADATA,
        "max_parallel_requests": PARALLEL_IN,
        "mcp_tools": MCP_TOOLS_IN,
    }


def _settings() -> dict[str, Schema]:
    return {
        "name": NAME,
        "max_budget_usd": MONEY_IN,
        "budget_period": PERIOD,
        "models": MODELS_IN,
        "rpm": LIMIT_RPM,
        "tpd": LIMIT_TPD,
        "max_parallel_requests": PARALLEL_IN,
        "mcp_tools": MCP_TOOLS_IN,
    }


def governance_schemas(tier: Schema) -> dict[str, Schema]:
    """Keys with scopes, quota overrides with budget and team, teams, spend."""
    quota = obj(
        {"tier": nullable(tier), "rpm": LIMIT_RPM, "tpd": LIMIT_TPD, "team": TEAM_REF,
         "max_budget_usd": MONEY_IN, "budget_period": PERIOD,
         "max_parallel_requests": PARALLEL_IN},
        (), False,
    )  # fmt: skip
    shown_scopes: dict[str, Schema] = {
        "models": nullable({"type": "array", "items": STR}),
        "expires_at": nullable(UNIX),
        "rpm": nullable(INT),
        "tpd": nullable(INT),
        "max_budget_usd": MONEY_OUT,
        "budget_period": nullable(STR),
        "team": nullable(STR),
        "metadata": {"type": ["object", "null"]},
        "max_parallel_requests": nullable(INT),
        "mcp_tools": nullable({"type": "array", "items": STR}),
    }
    key_fields: dict[str, Schema] = {
        "id": STR,
        "object": const("api_key"),
        "key_prefix": STR,
        "user": STR,
        "name": STR,
        "tier": nullable(STR),
        "status": STR,
        "created_at": UNIX,
        "last_used_at": nullable(UNIX),
    }
    return {
        "ApiKey": record({**key_fields, **shown_scopes}),
        "ApiKeyCreate": obj(
            {"user": {**TEXT, "minLength": 1, "maxLength": 128}, "tier": nullable(tier),
             "name": NAME, **_scopes()},
            ["user"], False,
        ) | NEEDS_PERIOD,
        "ApiKeyUpdate": obj({"name": NAME, **_scopes()}, (), False) | PERIOD_IF_SENT,
        "QuotaUpdate": quota | NEEDS_PERIOD,
        "QuotaChange": quota | PERIOD_IF_SENT,
        "UserQuota": record(
            {"object": const("user_quota"), "user": STR, "tier": nullable(STR),
             "rpm": nullable(INT), "tpd": nullable(INT), "team": nullable(STR),
             "max_budget_usd": MONEY_OUT, "budget_period": nullable(STR),
             "max_parallel_requests": nullable(INT),
             "effective": record({"rpm": INT, "tpd": INT})}
        ),
        "Team": record(
            {"id": STR, "object": const("team"), "name": STR, "max_budget_usd": MONEY_OUT,
             "budget_period": nullable(STR), "models": nullable({"type": "array", "items": STR}),
             "rpm": nullable(INT), "tpd": nullable(INT), "max_parallel_requests": nullable(INT),
             "mcp_tools": nullable({"type": "array", "items": STR}),
             "created_at": UNIX, "updated_at": UNIX}
        ),
        "TeamCreate": obj(
            {"id": {"type": "string", "pattern": TEAM_ID_PATTERN}, **_settings()}, ["id"], False
        ) | NEEDS_PERIOD,
        "TeamUpdate": obj(_settings(), (), False) | PERIOD_IF_SENT,
        "TeamList": list_of("Team"),
        "Spend": list_of(
            "SpendRow", group_by={"type": "string", "enum": list(SPEND_GROUPS)}, to=DAY,
            **{"from": DAY},
        ),
        "SpendRow": record(
            {"group": {**nullable(STR), "description": "The user, key id, team, model, tag "
                       "or UTC day (YYYY-MM-DD); null: none (no key, team or tag)."},
             "requests": INT, "prompt_tokens": INT, "completion_tokens": INT,
             "cached_tokens": INT, "cache_write_tokens": INT, "reasoning_tokens": INT,
             "cost_usd": COST, "cache_savings_usd": SIGNED_COST, "cache_hits": INT,
             "cache_saved_tokens": INT, "cache_saved_usd": COST}
        ),
    }  # fmt: skip


def governance_paths() -> dict[str, Schema]:
    """PATCH /admin/keys/{key} (joins that path's item), /admin/teams[/{team}], /admin/spend."""
    disabled = error(NotFound, f"{DISABLED} no such route.")
    no_team = error(NotFound, f"{DISABLED} no such team.")
    team_id = param("team", "path", STR, "The team id.")
    team_links = {
        name: {"operationId": target, "parameters": {"team": "$response.body#/id"}}
        for name, target in (("GetTeam", "getTeam"), ("UpdateTeam", "updateTeam"),
                             ("DeleteTeam", "deleteTeam"))
    }  # fmt: skip
    return {
        "/admin/keys/{key}": {
            "patch": op(
                "updateKey", "Admin", "Change a key's name and scopes (null clears one)",
                {"200": ok("The key as it is now.", ref("ApiKey")), "400": MALFORMED,
                 "401": UNAUTHORIZED, "404": error(NotFound, f"{DISABLED} no key with this id."),
                 "409": NO_PERIOD_409, "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                description="Fields left out stay as they are: `max_budget_usd` alone keeps "
                "the stored `budget_period`.",
                parameters=[param("key", "path", STR, "The key id.")],
                requestBody=body(ref("ApiKeyUpdate"), {"models": ["gpt-4o-mini", "team/*"],
                                 "max_budget_usd": "25", "budget_period": "monthly"},
                                 required=False),
            ),
        },
        "/admin/teams": {
            "post": op(
                "createTeam", "Admin", "Create a team",
                {"201": ok("The team.", ref("Team"), links=team_links), "400": MALFORMED,
                 "401": UNAUTHORIZED, "404": disabled,
                 "409": error(Conflict, "An active team has this `id` already.",
                              ["team_exists"]),
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                requestBody=body(ref("TeamCreate"), {"id": "research", "name": "Research",
                                 "max_budget_usd": 500, "budget_period": "monthly"}),
            ),
            "get": op("listTeams", "Admin", "List the teams",
                      {"200": ok("Active teams, by id.", ref("TeamList")),
                       "401": UNAUTHORIZED, "404": disabled, "503": DB_503}, ADMIN),
        },
        "/admin/teams/{team}": {
            "get": op("getTeam", "Admin", "Retrieve a team",
                      {"200": ok("The team.", ref("Team")), "400": NUL_400,
                       "401": UNAUTHORIZED, "404": no_team, "503": DB_503},
                      ADMIN, parameters=[team_id]),
            "patch": op(
                "updateTeam", "Admin", "Change a team (null clears a setting)",
                {"200": ok("The team as it is now.", ref("Team")), "400": MALFORMED,
                 "401": UNAUTHORIZED, "404": no_team, "409": NO_PERIOD_409,
                 "413": TOO_LARGE, "503": DB_503},
                ADMIN,
                parameters=[team_id],
                requestBody=body(ref("TeamUpdate"), {"rpm": 600}, required=False),
            ),
            "delete": op(
                "deleteTeam", "Admin", "Delete a team (its members keep their own limits)",
                {"204": {"description": "Deleted.", "headers": header_refs()}, "400": NUL_400,
                 "401": UNAUTHORIZED, "404": no_team, "503": DB_503},
                ADMIN, parameters=[team_id],
            ),
        },
        "/admin/spend": {
            "get": op(
                "getSpend", "Admin", "Requests, tokens and cost from the request log, grouped",
                {"200": ok("One row per group, by cost descending.", ref("Spend")),
                 "400": error(InvalidRequest, "A bad query parameter (`param` names it).",
                              ["invalid_value"]),
                 "401": UNAUTHORIZED, "404": disabled, "503": DB_503},
                ADMIN,
                description="A request with several tags counts once under each.",
                parameters=[
                    param("group_by", "query", {"type": "string", "enum": list(SPEND_GROUPS)},
                          "What to group by (default: user)."),
                    param("from", "query", DAY, "First UTC day, inclusive (default: 29 days "
                          "before `to`; after `to`: no rows)."),
                    param("to", "query", DAY, "Last UTC day, inclusive (default: today)."),
                    param("user", "query", STR, "Only this user's requests."),
                ],
            ),
        },
    }  # fmt: skip
