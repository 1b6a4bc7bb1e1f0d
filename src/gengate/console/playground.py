"""The playground: one form per product, each with the fields of that product's submit
route (their choices read from the route's own request model), submitted through the API's
route handler as the signed-in user; the job then shows on the same page, live, and its
pictures, videos or songs play there once it ends."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from gengate.console.user import call_api, job_view, route_model
from gengate.console.web import Page
from gengate.errors import BadRequest, GengateError, NotFound

__all__ = ["FORMS", "PLAYGROUND_PAGES"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    #: ``text``, ``long`` (a text area), ``choice`` (a select; choices from the request
    #: model unless given) or ``check`` (a boolean)
    kind: str = "text"
    hint: str = ""
    default: str = ""
    choices: tuple[str, ...] = ()
    #: a blank choice (the route's own default) first
    optional: bool = False
    maxlength: int = 200


@dataclass(frozen=True, slots=True)
class Form:
    product: str
    path: str
    fields: tuple[Field, ...]
    blurb: str
    #: sent as they are with every submit
    fixed: tuple[tuple[str, Any], ...] = ()
    #: the field the job's prompt comes from (kept for the next try)
    prompt: str = "prompt"


_PROMPT = Field("prompt", "Prompt", "long", maxlength=4000)

FORMS: dict[str, Form] = {f.product: f for f in (
    Form("midjourney", "/midjourney/v1/imagine", (
        Field("prompt", "Prompt", "long", "Midjourney parameters go at the end, e.g. "
              "--ar 16:9", maxlength=8192),
        Field("mode", "Mode", "choice", default="fast"),
        Field("hosted", "Run on my own accounts (hosting)", "check",
              "Needs an account on the Hosting page; charged the hosting price"),
    ), "A grid of four pictures, then buttons to upscale, vary or zoom."),
    Form("flux", "/flux/generate", (
        _PROMPT,
        Field("mode", "Model", "choice", default="flux1-dev"),
        Field("aspect_ratio", "Aspect ratio", "choice", "Made at about one megapixel",
              optional=True),
        Field("size", "Size", "choice", "Wins over the aspect ratio", optional=True),
    ), "One picture per job."),
    Form("gpt_image", "/openai/gpt/generations", (
        Field("prompt", "Prompt", "long", '"draw a ..." works best', maxlength=32000),
        Field("model", "Model", "choice", default="gpt-image-2"),
        Field("aspect_ratio", "Aspect ratio", "choice", "gpt-image-2 only",
              choices=("1:1", "3:4", "4:3", "16:9", "9:16"), optional=True),
        Field("size", "Size (WIDTHxHEIGHT)", "text", "gpt-image-2-plus only", maxlength=32),
    ), "One picture per job."),
    Form("gemini_image", "/gemini/image/generate", (
        Field("prompt", "Prompt", "long", maxlength=32000),
        Field("model", "Model", "choice", default="gemini-3-pro-image-preview"),
        Field("aspect_ratio", "Aspect ratio", "choice", "Gemini 3 models only",
              choices=("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9",
                       "21:9"), optional=True),
        Field("image_size", "Resolution", "choice", "Past 1K: Gemini 3 models only",
              choices=("1K", "2K", "4K"), optional=True),
    ), "One picture per job.", (("sync_return", False),)),
    Form("sora", "/sora/generations", (
        _PROMPT,
        Field("model", "Model", "choice", "sora-2-pro is the HD model", default="sora-2"),
        Field("orientation", "Orientation", "choice", default="portrait"),
        Field("duration", "Seconds", "choice", "25 only on sora-2-pro at size small",
              optional=True),
        Field("size", "Size", "choice", "sora-2-pro only", optional=True),
    ), "A video with sound; it plays here when it is done."),
    Form("gemini_video", "/gemini/video/generations", (
        _PROMPT,
        Field("aspect_ratio", "Aspect ratio", "choice", default="16:9"),
    ), "An eight-second video; it plays here when it is done."),
    Form("suno", "/suno/v1/music", (
        Field("gpt_description_prompt", "What the song is about", "long",
              "Inspiration mode: Suno writes the lyrics", maxlength=500),
        Field("custom", "Custom mode: my own lyrics, title and style", "check"),
        Field("prompt", "Lyrics (custom mode)", "long", maxlength=5000),
        Field("title", "Title (custom mode)", maxlength=80),
        Field("tags", "Style (custom mode)", hint="e.g. dream pop, female vocals",
              maxlength=200),
        Field("instrumental", "Instrumental (no vocals)", "check"),
        Field("mv", "Model", "choice", default="chirp-v5"),
    ), "Two songs per request, billed as one; both play here when they are done.",
        prompt="gpt_description_prompt"),
)}


def _literal_choices(model: Any, name: str) -> tuple[Any, ...]:
    """The values a request model's ``Literal`` field takes, in its own order."""
    info = getattr(model, "model_fields", {}).get(name)
    if info is None:
        return ()
    out: list[Any] = []
    stack = [info.annotation]
    while stack:
        tp = stack.pop(0)
        origin = typing.get_origin(tp)
        if origin is typing.Literal:
            out.extend(typing.get_args(tp))
        elif origin in (typing.Union, types.UnionType):
            stack.extend(typing.get_args(tp))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Shown:
    """A field as the page draws it, with its current value."""

    field: Field
    value: str
    choices: tuple[str, ...]


def _choices(ctx: Page, form: Form, field: Field) -> tuple[Any, ...]:
    if field.choices:
        return field.choices
    if form.product == "midjourney" and field.name == "mode":
        return tuple(lane.value for lane in ctx.rt.products.get("midjourney").lanes)
    return _literal_choices(route_model(ctx.rt, form.path), field.name)


def _available(ctx: Page) -> list[tuple[str, str]]:
    return [(p.name, p.title) for p in ctx.rt.products if p.name in FORMS]


async def playground(ctx: Page) -> Response:
    q = ctx.request.query_params
    products = _available(ctx)
    if not products:
        return ctx.html("playground.html", products=[], form=None, fields=[], j=None)
    chosen = q.get("product") or products[0][0]
    if chosen not in dict(products):
        raise NotFound(f"product {chosen[:40]} has no playground form here")
    form = FORMS[chosen]
    fields = [Shown(f, q.get(f.name, f.default), tuple(str(c) for c in _choices(ctx, form, f)))
              for f in form.fields]
    j = None
    job_id = q.get("job")
    if job_id:
        found = await ctx.rt.jobs.fetch(ctx.user_id, job_id)
        j = job_view(ctx.rt, found)
    return ctx.html("playground.html", products=products, product=chosen, form=form,
                    title=dict(products)[chosen], fields=fields, j=j)


def _body(ctx: Page, form: Form) -> dict[str, Any]:
    """The route's JSON body from the form: blanks left out (the route's defaults apply),
    choices turned back into the request model's own values (``10`` for Sora's seconds)."""
    body: dict[str, Any] = dict(form.fixed)
    for field in form.fields:
        if field.kind == "check":
            if field.name != "hosted":
                body[field.name] = bool(ctx.form.get(field.name))
            continue
        raw = ctx.form.get(field.name, "").strip()
        if not raw:
            continue
        if len(raw) > field.maxlength:
            raise BadRequest(f"{field.name}: at most {field.maxlength} characters")
        if field.kind == "choice":
            allowed = {str(c): c for c in _choices(ctx, form, field)}
            if raw not in allowed:
                raise BadRequest(f"{field.name}: use {', '.join(allowed)}")
            body[field.name] = allowed[raw]
        else:
            body[field.name] = raw
    return body


async def playground_submit(ctx: Page) -> Response:
    product = ctx.field("product", "midjourney")
    form = FORMS.get(product)
    if form is None or product not in ctx.rt.products:
        raise BadRequest(f"product: the playground submits "
                         f"{', '.join(name for name, _ in _available(ctx))}")
    kept = {"product": product, **{f.name: ctx.form.get(f.name, "")[:f.maxlength]
                                   for f in form.fields if ctx.form.get(f.name)}}
    back = "/console/playground?" + urlencode(kept)
    try:
        body = _body(ctx, form)
        path = ("/hold" + form.path) if ctx.form.get("hosted") else form.path
        out = await call_api(ctx, path, body)
    except GengateError as exc:  # back to the form, what was typed kept
        return ctx.redirect(back, error=exc.message)
    job_id = str(out["data"]["jobId"])
    return ctx.redirect(back + "&" + urlencode({"job": job_id}), ok="Submitted")


PLAYGROUND_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/playground", playground, ["GET"], None),
    ("/console/playground", playground_submit, ["POST"], "/console/playground"),
]
