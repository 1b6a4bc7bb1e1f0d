"""One request to a TTAPI-style front, as route handlers see it: method, query, headers,
body, and the caller once authenticated. Shared by the engine's own routes and every
product's routes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gengate.errors import BadRequest, UnsupportedMediaType
from gengate.keys import KeyPolicy
from gengate.products.base import Submit

__all__ = ["Call", "parse_query"]

_FORM = "application/x-www-form-urlencoded"


@dataclass(slots=True)
class Call:
    """One request to the TTAPI front."""

    method: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes | bytearray = b""
    user_id: int = 0
    #: came in under /hold: runs on the caller's own accounts
    hosted: bool = False
    #: the caller's API key (its id and limits), once authenticated
    key: KeyPolicy | None = None
    #: came in on a synchronous route (its jobs are waited on)
    sync: bool = False

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def content_type(self) -> str:
        return (self.header(b"content-type") or "").split(";")[0].strip().lower()

    def api_key(self) -> str | None:
        """``TT-API-KEY``, then ``Authorization: Bearer``, then ``x-api-key``."""
        found: dict[bytes, bytes] = {}
        for key, value in self.headers:
            if key in (b"tt-api-key", b"authorization", b"x-api-key"):
                found.setdefault(key, value)
        if b"tt-api-key" in found:
            return found[b"tt-api-key"].decode("latin-1").strip()
        if b"authorization" in found:
            text = found[b"authorization"].decode("latin-1").strip()
            scheme, _, rest = text.partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else text
        if b"x-api-key" in found:
            return found[b"x-api-key"].decode("latin-1").strip()
        return None

    def data(self, *, forms: bool = False) -> dict[str, Any]:
        """The JSON body (POST) or the query string (GET) as a dict; with ``forms``, an
        url-encoded form body is accepted too (fetch routes take ``jobId`` either way)."""
        if self.method == "GET" or not self.body or self.body.isspace():
            return parse_query(self.query)
        ctype = self.content_type()
        if forms and ctype == _FORM:
            return dict(parse_qsl(bytes(self.body).decode("latin-1")))
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise UnsupportedMediaType(
                f"Content-Type must be application/json, got {ctype or 'none'}"
            )
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body: invalid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(data, dict):
            raise BadRequest("body: must be a JSON object")
        return data

    def job_id(self) -> str:
        """``jobId`` (or ``job_id``) from the query, a JSON body or a form body."""
        data = self.data(forms=True)
        job_id = data.get("jobId", data.get("job_id"))
        if (not isinstance(job_id, str) or not job_id) and self.method != "GET":
            query = parse_query(self.query)
            job_id = query.get("jobId", query.get("job_id"))
        if not isinstance(job_id, str) or not job_id:
            raise BadRequest("jobId: is required")
        return job_id

    def submit(self, *, hook_url: str | None = None, timeout: int | None = None,
               get_u_images: bool = False, hook_progress: bool = False,
               relax_fallback: bool = False, sync: bool | None = None,
               fingerprint: bytes | None = None) -> Submit:
        """The common part of a submit request: who, where to call back, the
        ``Idempotency-Key`` and what it stands for (the body, or ``fingerprint`` where the
        same request can arrive as different bytes: a multipart boundary). ``sync``: the
        route waits for the job (default: whether the route is synchronous)."""
        key = self.header(b"idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise BadRequest("Idempotency-Key: must be 1 to 255 characters")
        # what the key stands for: a replay must repeat the request, not just the key
        seen = self.body if fingerprint is None else fingerprint
        request = hashlib.sha256(seen).hexdigest()[:32] if key is not None else None
        return Submit(self.user_id, timeout, hook_url, get_u_images, key, hook_progress,
                      request, self.hosted, relax_fallback,
                      self.key.key_id if self.key is not None else None,
                      self.sync if sync is None else sync)


def parse_query(raw: bytes) -> dict[str, str]:
    """A query string as a dict (the last value of a repeated name wins)."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    out = {}
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if name and sep:
            out[name] = value
    return out
