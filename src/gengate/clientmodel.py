"""What gengate's Python client knows of the server's products, apart from the wire.

The actions a client may call are the products' own routes (:func:`actions`, built from
the route tables in :mod:`gengate.products`); a job is the product's fetch answer
(:class:`Job`); and request fields become JSON file fields or multipart forms as the
route takes them (:func:`file_field`, :func:`form_of`). :mod:`gengate.client` sends them.
"""

from __future__ import annotations

import base64
import mimetypes
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gengate import errors
from gengate.products.base import Product, ProductRoute
from gengate.products.registry import Registry, builtin

__all__ = [
    "Action",
    "Form",
    "Job",
    "ProgressCallback",
    "actions",
    "file_field",
    "form_of",
    "job_id_of",
    "product_of",
]

# -- the products' actions, from their contracts ----------------------------------------
@dataclass(frozen=True, slots=True)
class Action:
    """One route of a product, as a client calls it."""

    product: str
    name: str
    path: str
    methods: frozenset[str]
    model: Any
    summary: str

    @property
    def method(self) -> str:
        return "POST" if "POST" in self.methods else "GET"

    @property
    def multipart(self) -> bool:
        """The route takes ``multipart/form-data`` (files uploaded as such)."""
        return getattr(self.model, "media_type", "") == "multipart/form-data"

    @property
    def fields(self) -> dict[str, Any]:
        """The request model's fields (pydantic ``FieldInfo``), by wire name."""
        return dict(self.model.model_fields) if self.model is not None else {}

    def check(self, given: Mapping[str, Any]) -> None:
        """A :class:`~gengate.errors.BadRequest` for a field the route does not have."""
        if self.model is None:
            unknown = list(given)
        else:
            known = set(self.fields)
            for info in self.fields.values():
                alias = info.validation_alias
                known.update(getattr(alias, "choices", ()) or ())
            unknown = [name for name in given if name not in known]
        if unknown:
            raise errors.BadRequest(f"{self.product} {self.name}: no field "
                                    f"{', '.join(map(repr, unknown))}; it takes "
                                    f"{', '.join(self.fields) or 'no fields'}")


def _action_name(product: Product[Any], route: ProductRoute, taken: Mapping[str, Any]) -> str:
    """The path's last part (``imagine``, ``generate``); its last two where two routes of
    the product end alike (``4o-image-generations``); ``fetch`` for the product's fetch."""
    if route.path == product.fetch_path:
        return "fetch"
    parts = route.path.strip("/").split("/")
    name = parts[-1]
    if name in taken or name == "fetch":
        name = "-".join(parts[-2:])
    return name


def actions(registry: Registry | None = None) -> dict[str, dict[str, Action]]:
    """product name -> action name -> :class:`Action`, from the products' route tables
    (the action name is the path's last part: ``imagine``, ``generate``, ``fetch``)."""
    out: dict[str, dict[str, Action]] = {}
    for product in registry if registry is not None else builtin():
        table: dict[str, Action] = {}
        for route in product.routes():
            if not route.auth:
                continue
            name = _action_name(product, route, table)
            table[name] = Action(product.name, name, route.path, route.methods, route.model,
                                 route.summary)
        out[product.name] = table
    return out


# -- jobs -------------------------------------------------------------------------------
@dataclass(slots=True)
class Job:
    """A job as its product's fetch answers it."""

    id: str
    product: str
    body: dict[str, Any]
    #: the product's wire names for an ended job
    success_status: str = "SUCCESS"
    failed_status: str = "FAILED"
    started: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> str:
        return str(self.body.get("status", ""))

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")

    @property
    def done(self) -> bool:
        return self.status in (self.success_status, self.failed_status)

    @property
    def succeeded(self) -> bool:
        return self.status == self.success_status

    @property
    def progress(self) -> int | None:
        """Percent done, where the product tells it."""
        for source in (self.data, self.body):
            value = source.get("progress")
            if value is None or value == "":
                continue
            try:
                return max(0, min(100, int(float(str(value).rstrip("%")))))
            except ValueError:
                continue
        return 100 if self.succeeded else None

    @property
    def queue_position(self) -> int | None:
        """The job's place in the queue, where the server tells it."""
        for source in (self.data, self.body):
            for key in ("queuePosition", "queue_position"):
                if isinstance(source.get(key), int):
                    return int(source[key])
        return None

    def files(self) -> list[str]:
        """The result files' URLs, each once, in the order the body lists them."""
        seen: dict[str, None] = {}

        def walk(value: Any, key: str = "") -> None:
            if isinstance(value, str):
                if value.startswith(("http://", "https://")) and "hook" not in key.lower() \
                        and "discord" not in key.lower():
                    seen.setdefault(value)
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, k)
            elif isinstance(value, list):
                for item in value:
                    walk(item, key)

        walk(self.data)
        return list(seen)


#: called with the job each time its fetch answer changes
ProgressCallback = Callable[[Job], None]


def file_field(value: Any) -> Any:
    """``@path`` (or a :class:`~pathlib.Path`, or bytes) as a data URL; anything else as is."""
    if isinstance(value, str) and value.startswith("@"):
        value = Path(value[1:])
    if isinstance(value, Path):
        kind = mimetypes.guess_type(value.name)[0] or "application/octet-stream"
        value = f"data:{kind};base64,{base64.b64encode(value.read_bytes()).decode()}"
    elif isinstance(value, bytes):
        value = f"data:image/png;base64,{base64.b64encode(value).decode()}"
    elif isinstance(value, list | tuple):
        return [file_field(item) for item in value]
    return value


#: a multipart body: its plain fields, and its files as (field, (name, bytes, type))
Form = tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]


def form_of(fields: Mapping[str, Any]) -> Form:
    """Fields as a multipart form: ``@path``, paths and bytes as file parts (a list: one
    part each, under the same name), the others as text (booleans as true/false)."""
    data: dict[str, str] = {}
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            if isinstance(item, str) and item.startswith("@"):
                item = Path(item[1:])
            if isinstance(item, Path):
                kind = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
                files.append((name, (item.name, item.read_bytes(), kind)))
            elif isinstance(item, bytes):
                files.append((name, (f"{name}.png", item, "image/png")))
            else:
                data[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return data, files


def job_id_of(answer: Mapping[str, Any]) -> str | None:
    """The id of the job an answer names: ``data.jobId`` or ``data.job_id`` (a submit),
    or ``jobId`` beside ``data`` (a synchronous route's answer, the job already ended)."""
    data = answer.get("data")
    job_id = (data.get("jobId") or data.get("job_id")) if isinstance(data, dict) else None
    job_id = job_id or answer.get("jobId")
    return str(job_id) if job_id else None


def product_of(data: Mapping[str, Any], products: Mapping[str, Product[Any]]) -> str:
    """The product a job's body names, where this client knows it; else the first known."""
    return str(data.get("product")) if data.get("product") in products else next(iter(products))
