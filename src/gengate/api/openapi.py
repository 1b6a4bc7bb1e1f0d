"""The OpenAPI document, built from the same route table and models the server uses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gengate import __version__
from gengate.api import schemas as s
from gengate.api.ttapi import Route, routes_of
from gengate.products.registry import Registry, builtin

__all__ = ["openapi_document"]

_ERRORS = {
    "400": "Bad request: the message names the field",
    "401": "Wrong TT-API-KEY or email is not activated. (unknown, revoked or expired key)",
    "402": "Insufficient balance, or the API key's own spend cap (the message says which)",
    "403": "The API key may not do this: the message names the rule (product, address)",
    "404": "Not found",
    "408": "Request body not received in time (routes that take images)",
    "413": "Request body too large",
    "415": "Content-Type must be application/json",
    "429": "Too many requests",
    "409": "Idempotency-Key already used for a different request; or the job to cancel "
           "already ended",
    "499": "Your in-progress jobs reached max_queue (yours, or the product's)",
    "504": "A synchronous call's job is still running (data: its jobId)",
    "500": "Server error",
    "503": "The database did not answer for now; send the request again shortly",
}
#: the LLM relay's answers besides 200: in the Anthropic or OpenAI error format, or the
#: upstream's own answer passed through
_LLM_ERRORS = {
    "400": "Bad request", "401": "Wrong key", "402": "Insufficient balance",
    "403": "Refused by the upstream", "404": "No such model, or no LLM accounts",
    "409": "Conflict", "413": "Request body too large", "422": "Refused by the upstream",
    "429": "Too many requests", "499": "Your in-progress calls reached max_queue",
    "500": "Server error", "502": "The upstream failed", "503": "No upstream available",
    "504": "The upstream timed out", "529": "The upstream is overloaded",
}
_LLM_BODY = {"type": "object", "required": ["model"],
             "properties": {"model": {"type": "string", "minLength": 1}}}
_USAGE_PARAMS = [
    {"name": "page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": s.MAX_PAGE}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
]

_ADMIN = [
    ("/admin/users", "post", s.CreateUserRequest, "Create a user and its first API key"),
    ("/admin/users", "get", None, "List users"),
    ("/admin/users/{user_id}", "get", None, "One user"),
    ("/admin/users/{user_id}", "patch", s.UpdateUserRequest, "Set max_queue or active"),
    ("/admin/users/{user_id}/topup", "post", s.TopUpRequest, "Add quota (negative removes)"),
    ("/admin/users/{user_id}/password", "put", s.PasswordRequest,
     "Set the user's console password (argon2id hash kept); null removes it"),
    ("/admin/users/{user_id}/keys", "post", s.KeyCreate,
     "Issue another API key, with optional limits (its secret is shown once)"),
    ("/admin/users/{user_id}/keys", "get", None,
     "List a user's keys with their limits and spend (never the secrets)"),
    ("/admin/users/{user_id}/keys/usage", "get", None,
     "Spend per key per UTC day (`days`, default 30)"),
    ("/admin/users/{user_id}/keys/{key_id}", "get", None, "One key"),
    ("/admin/users/{user_id}/keys/{key_id}", "patch", s.KeyUpdate,
     "Change a key's name or limits (null removes a limit)"),
    ("/admin/users/{user_id}/keys/{key_id}", "delete", None,
     "Revoke a key (every node stops accepting it within a second)"),
    ("/admin/users/{user_id}/keys/{key_id}/rotate", "post", None,
     "Give a key a new secret; the old one stops at once"),
    ("/admin/users/{user_id}/ledger", "get", None, "A user's ledger and totals"),
    ("/admin/accounts", "post", s.CreateAccountRequest,
     "Add an upstream account to the operator's pool"),
    ("/admin/accounts", "get", None, "The pool's accounts with live slot use and health"),
    ("/admin/accounts/{account_id}", "get", None, "One account (never its credentials)"),
    ("/admin/accounts/{account_id}", "patch", s.UpdateAccountRequest,
     "Change an account; enabling clears its health flags"),
    ("/admin/accounts/{account_id}", "delete", None,
     "Remove an account (running jobs finish there)"),
    ("/admin/accounts/{account_id}/events", "get", None, "An account's health changes"),
    ("/admin/accounts/{account_id}/check", "post", None,
     "Probe an account now with the background health check; its state follows"),
    ("/admin/prices", "get", None,
     "Both price tables, each entry with its source (built-in, environment, operator)"),
    ("/admin/prices", "put", s.PriceSet,
     "Set an operator price; every node uses it for jobs admitted after it"),
    ("/admin/prices", "delete", None,
     "Remove an operator price (`tier`, `key` in the query): the earlier one applies"),
]

#: the LLM relay (api/llm.py): bodies and answers are the Anthropic and OpenAI ones
_LLM = [
    ("/v1/messages", "post", "Anthropic Messages (stream: true for SSE); billed per token"),
    ("/v1/messages/count_tokens", "post", "Anthropic token count (free)"),
    ("/v1/chat/completions", "post", "OpenAI Chat Completions; billed per token"),
    ("/v1/models", "get", "Models the LLM accounts serve (an empty list without accounts)"),
    ("/v1/models/{model_id}", "get", "One model the LLM accounts serve; 404 for others"),
    ("/v1/usage", "get", "Your LLM calls, newest first (page, limit)"),
]

#: pages without a key: path -> (media type, summary)
_PUBLIC = {
    "/status": ("text/html", "Status page: products and modes now, incidents and "
                "maintenance, each product's last 90 days (docs/console.md)"),
    "/status.json": ("application/json", "The status page's figures: product lines in the "
                     "envelope's data, and beside it incidents and 90-day history"),
    "/healthz": ("application/json", "Readiness: 200 when the database (and Redis) answer"),
    "/metrics": ("text/plain", "Prometheus metrics"),
    "/openapi.json": ("application/json", "This document"),
    "/cdn/{key}": ("image/png", "A stored result file (unguessable names, no key needed); "
                   "honours one byte Range; with an object store in redirect or public mode, "
                   "a 307 to the object"),
}

_ENVELOPE = {
    "type": "object",
    "required": ["status", "message", "data"],
    "properties": {
        "status": {"type": "string", "enum": ["SUCCESS", "FAILED"]},
        "message": {"type": "string"},
        "data": {},
    },
}
_FETCH = {
    "type": "object",
    "required": ["status", "message", "jobId", "data"],
    "properties": {
        "status": {"type": "string",
                   "enum": ["PENDING_QUEUE", "ON_QUEUE", "SUCCESS", "FAILED"]},
        "message": {"type": "string"},
        "jobId": {"type": "string"},
        "data": {"type": "object", "properties": {**{k: {} for k in (
            "action", "jobId", "progress", "prompt", "quota", "mode", "discordImage",
            "cdnImage", "width", "height", "hookUrl", "components", "seed", "images",
            "prompts", "submitTime", "finishTime")}, "expired": {
            "type": "boolean", "description": "Present (true) when the retention period "
            "deleted the result files: the URLs are null and message says so"}}},
    },
}


#: a synchronous route's 504
_SYNC_TIMEOUT = (
    "The job is still running after GENGATE_SYNC_TIMEOUT seconds (default 300). The body "
    "names its jobId; the job goes on: fetch it later, receive its webhook, or send the same "
    "request again with the same Idempotency-Key to wait on the same job. It is charged only "
    "if it succeeds, once.")


def _responses(ok_schema: str, route: Route | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{ok_schema}"}}}}}
    shape = route.error_shape if route is not None else None
    for code, text in _ERRORS.items():
        if code == "504" and route is not None and route.sync:
            text = _SYNC_TIMEOUT
        if shape is None:
            content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Envelope"}}
        else:  # the route's own error format, shown by example
            data = {"jobId": "7c1f3e0a-..."} if code in ("500", "504") else None
            content = {"example": shape(int(code), text, data)}
        out[code] = {"description": text, "content": {"application/json": content}}
    return out


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body; a model may name another media type in ``media_type``
    (``multipart/form-data`` for uploads)."""
    media = getattr(model, "media_type", "application/json")
    return {"required": True, "content": {media: {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _llm_operation(path: str, method: str, summary: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    for code, text in _LLM_ERRORS.items():
        responses[code] = {"description": text}
    op: dict[str, Any] = {"summary": summary, "tags": ["llm"], "responses": responses,
                          "security": [{"TTApiKey": []}, {"Bearer": []}, {"XApiKey": []}]}
    if method == "post":
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _LLM_BODY}}}
    if path == "/v1/usage":
        op["parameters"] = _USAGE_PARAMS
    return op


def _public_paths() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, (media, summary) in _PUBLIC.items():
        op: dict[str, Any] = {"summary": summary, "tags": ["status"],
                              "responses": {"200": {"description": "OK", "content": {media: {}}}}}
        if path.startswith("/cdn"):
            op["parameters"] = [{"name": "key", "in": "path", "required": True,
                                 "schema": {"type": "string"}}]
            op["parameters"].append({"name": "Range", "in": "header", "required": False,
                                     "schema": {"type": "string"}})
            op["responses"].update({
                "206": {"description": "The requested byte range", "content": {media: {}}},
                "307": {"description": "Redirect to the object (presigned or public URL)"},
                "404": {"description": "No such file"},
                "416": {"description": "The range starts past the end of the file"}})
            out[path] = {"get": op, "head": {**op, "summary": "The same, headers only"}}
            continue
        if path == "/healthz":
            op["responses"]["503"] = _responses("Envelope")["500"] | {
                "description": "The database or Redis does not answer"}
        if path == "/metrics":
            op["security"] = [{"MetricsBearer": []}, {}]
            op["responses"]["401"] = _responses("Envelope")["401"] | {
                "description": "GENGATE_METRICS_TOKEN is set and the request lacks it"}
        out[path] = {"get": op}
    return out


def _upstream_paths() -> dict[str, Any]:
    """The route upstreams call (docs/accounts.md, "Upstream notifications")."""
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    op: dict[str, Any] = {
        "summary": "An upstream midjourney-proxy tells of a task's change (its notifyHook); "
                   "the job that follows an ended task (status SUCCESS, FAILURE or CANCEL) "
                   "polls it at once. No API key: the token in the path is the credential. "
                   "Present only with GENGATE_UPSTREAM_NOTIFY_URL set",
        "tags": ["upstream"],
        "security": [{}],
        "parameters": [
            {"name": "account_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0}},
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "description": "The task as the proxy's fetch shows it; only "
            "id and status are read, and neither is believed before the upstream is asked",
            "properties": {"id": {"type": "string"}, "status": {"type": "string"}}}}}},
        "responses": {
            "204": {"description": "Heard (whatever the body says)"},
            "404": {"description": "No such account token (or no GENGATE_UPSTREAM_NOTIFY_URL)",
                    "content": envelope},
            "413": {"description": "The body is over 256 KiB", "content": envelope}},
    }
    return {"/upstream/notify/{account_id}/{token}": {"post": op}}


_NOT_SUBMITS = ("fetch", "fetch-list", "promptCheck", "info", "status")


def _fetch_schema(statuses: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["status", "message", "jobId", "data"],
            "properties": {"status": {"type": "string", "enum": statuses},
                           "message": {"type": ["string", "null"]}, "jobId": {"type": "string"},
                           "data": {"type": "object"}}}


def _operation(path: str, method: str, route: Route, ok_schema: str,
               models: set[type[BaseModel]]) -> dict[str, Any]:
    tag = ("webhooks" if path.startswith("/webhooks") else
           "hosting" if path.startswith("/hold") else
           "keys" if path.startswith("/keys") else route.product or "jobs")
    if isinstance(route.answer_model, type) and issubclass(route.answer_model, BaseModel):
        models.add(route.answer_model)
        ok_schema = route.answer_model.__name__
    op: dict[str, Any] = {"summary": route.summary, "responses": _responses(ok_schema, route),
                          "tags": [tag]}
    if route.auth:
        op["security"] = [{"TTApiKey": []}, {"Bearer": []}, {"XApiKey": []}]
    if isinstance(route.model, type) and issubclass(route.model, BaseModel):
        models.add(route.model)
        if method == "POST":
            op["requestBody"] = _body(route.model)
        else:
            op["parameters"] = _query_params(route.model)
    if (method == "POST" and route.product is not None
            and path.split("/")[-1] not in _NOT_SUBMITS):
        op.setdefault("parameters", []).append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "A retried submit with the same key returns the first job (a "
                           "synchronous route waits on it again)",
        })
    return op


#: what the video front can answer besides success (as OpenAI's error object): bad input,
#: key, balance, unknown video, method, size, media type, rate limits, max_queue, start-up
_VIDEO_ERRORS = ("400", "401", "402", "404", "405", "413", "415", "429", "499", "500",
                 "503")


def _video_paths(models: set[type[BaseModel]]) -> dict[str, Any]:
    """OpenAI's video API front (``gengate.api.videos``): OpenAI's schema and errors."""
    from gengate.api.videos import VIDEO_PATHS

    error = {"description": "OpenAI's error object", "content": {"application/json": {
        "schema": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}}}}
    video = {"description": "OpenAI's Video object (id, object, model, status: queued | "
             "in_progress | completed | failed, progress, created_at, completed_at, seconds, "
             "size, error)", "content": {"application/json": {}}}
    out: dict[str, Any] = {}
    for path, (methods, model, summary) in VIDEO_PATHS.items():
        for method in methods:
            op: dict[str, Any] = {
                "summary": summary, "tags": ["sora"],
                "security": [{"Bearer": []}, {"TTApiKey": []}, {"XApiKey": []}],
                "responses": {"200": video, **{code: error for code in _VIDEO_ERRORS}}}
            if path.endswith("/content"):
                op["responses"] = {"302": {"description": "Redirect to the stored file "
                                           "(served with Range support)"},
                                   **{code: error for code in _VIDEO_ERRORS}}
                op["parameters"] = [{"name": "variant", "in": "query", "required": False,
                                     "schema": {"type": "string",
                                                "enum": ["video", "thumbnail"]}}]
            if "{video_id}" in path:
                op.setdefault("parameters", []).insert(0, {
                    "name": "video_id", "in": "path", "required": True,
                    "schema": {"type": "string"}})
            if model is not None:
                models.add(model)
                op["requestBody"] = {"required": True, "content": {
                    media: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                    for media in ("application/json", "multipart/form-data")}}
            out.setdefault(path, {})[method.lower()] = op
    return out


def _fetch_name(product: str, products: Registry) -> str:
    if product == "midjourney":
        return "FetchBody"
    return f"{products.get(product).title.replace(' ', '')}FetchBody"


def openapi_document(products: Registry | None = None) -> dict[str, Any]:
    products = products if products is not None else builtin()
    paths: dict[str, dict[str, Any]] = {}
    models: set[type[BaseModel]] = set()
    schemas: dict[str, Any] = {"Envelope": _ENVELOPE, "FetchBody": _FETCH}
    for product in products:
        if product.name != "midjourney":
            schemas[_fetch_name(product.name, products)] = _fetch_schema(
                product.statuses.names())
    for path, route in routes_of(products).items():
        ok_schema = "Envelope"
        if path.endswith("/fetch") and route.product is not None:
            ok_schema = _fetch_name(route.product, products)
        for method in sorted(route.methods):
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, route,
                                                                    ok_schema, models)
    for path, method, model, summary in _ADMIN:
        op = {"summary": summary, "tags": ["admin"], "security": [{"AdminBearer": []}],
              "responses": _responses("Envelope")}
        if model is not None:
            models.add(model)
            op["requestBody"] = _body(model)
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True,
                                 "schema": {"type": "integer"}} for p in params]
        paths.setdefault(path, {})[method] = op
    for path, method, summary in _LLM:
        paths.setdefault(path, {})[method] = _llm_operation(path, method, summary)
        if "{model_id}" in path:
            paths[path][method]["parameters"] = [{"name": "model_id", "in": "path",
                                                  "required": True,
                                                  "schema": {"type": "string"}}]
    if "sora" in products:
        paths.update(_video_paths(models))
    paths.update(_public_paths())
    paths.update(_upstream_paths())
    for wire in sorted(models, key=lambda m: m.__name__):
        schema = wire.model_json_schema(ref_template="#/components/schemas/{model}")
        # what the models share (the Mode enum) becomes a schema of its own
        schemas.update(schema.pop("$defs", {}))
        schemas[wire.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "gengate", "version": __version__,
                 "description": "TTAPI-compatible gateway for asynchronous AI generation"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "TTApiKey": {"type": "apiKey", "in": "header", "name": "TT-API-KEY"},
            "Bearer": {"type": "http", "scheme": "bearer"},
            "XApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "AdminBearer": {"type": "http", "scheme": "bearer",
                            "description": "GENGATE_ADMIN_KEY"},
            "MetricsBearer": {"type": "http", "scheme": "bearer",
                              "description": "GENGATE_METRICS_TOKEN, where it is set"},
        }},
    }
