"""Midjourney's submissions: the prompt checked against its grammar and word filter, a
follow-up checked against its parent's buttons, inputs decoded, and the job handed to
the engine as a :class:`~gengate.products.base.JobRequest`."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest
from gengate.jobs import Job, Mode, new_job_id
from gengate.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_PROMPT_CHARS
from gengate.products.base import Engine, JobRequest, Product, Submit
from gengate.products.midjourney import imaging
from gengate.products.midjourney import prompt as prompts
from gengate.products.midjourney.actions import (
    ENDPOINT_ONLY_ACTIONS,
    ResultKind,
    normalize_action,
)
from gengate.products.midjourney.options import MidjourneyOptions

__all__ = ["Submissions"]


def _seed_from(job_id: str) -> int:
    """A job's default seed: 32 of its id's random bits (the first ones are its time)."""
    return int(job_id[-8:], 16)


@dataclass
class Submissions:
    """The Midjourney submissions, with the prompt rules and word filter they check."""

    product: Product[Any]
    rules: prompts.PromptRules = field(default_factory=prompts.PromptRules)
    word_filter: prompts.WordFilter = field(default_factory=prompts.WordFilter.default)

    async def check_prompt(self, prompt: str) -> prompts.ParsedPrompt:
        """The checked prompt (grammar and banned words), or 400.

        Every check is linear in the prompt, and the longest prompt takes a few milliseconds,
        so it runs on the event loop (a thread would make the loop wait for the interpreter
        lock several times over). A permutation prompt is filtered once per expansion: other
        requests run between two expansions."""
        if not prompt or not prompt.strip():
            raise BadRequest("prompt: must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise BadRequest(f"prompt: must be at most {MAX_PROMPT_CHARS} characters")
        parsed = prompts.parse_prompt(prompt, self.rules)
        if not parsed.permutations:
            self.word_filter.check(parsed.text)
            return parsed
        for variant in parsed.permutations:
            await asyncio.sleep(0)
            self.word_filter.check(variant.text)
        return parsed

    async def _admit(self, engine: Engine, sub: Submit, job_id: str, action: str, mode: Mode,
                     prompt: str, options: MidjourneyOptions, *, parent: Job | None = None,
                     inputs: list[bytes] | None = None) -> Job:
        request = JobRequest(action=action, variant=mode.value, options=options,
                             prompt=prompt, inputs=inputs or [], lane=mode, parent=parent,
                             job_id=job_id)
        return await engine.submit(self.product, sub, request)

    async def imagine(self, engine: Engine, sub: Submit, prompt: str, mode: Mode) -> Job:
        parsed = await self.check_prompt(prompt)
        if parsed.permutations:
            raise BadRequest(
                f"prompt: permutation prompts expand to {len(parsed.permutations)} jobs; "
                "submit each prompt on its own"
            )
        mode = Mode(parsed.mode) if parsed.mode else mode
        job_id = new_job_id()
        seed = parsed.seed if parsed.seed is not None else _seed_from(job_id)
        options = MidjourneyOptions(version=parsed.version, aspect=list(parsed.aspect),
                                    seed=seed)
        return await self._admit(engine, sub, job_id, "imagine", mode, parsed.canonical,
                                 options)

    async def action(self, engine: Engine, sub: Submit, parent_id: str, action: str) -> Job:
        spec = normalize_action(action)
        if spec.name in ENDPOINT_ONLY_ACTIONS:
            raise BadRequest(f"action: use /midjourney/v1/{spec.name} for {spec.name}")
        parent = await engine.parent(sub.user_id, parent_id)
        if spec.name not in (parent.result.get("components") or []):
            raise BadRequest(
                f"action: `{spec.name}` is not available on job {parent.id} "
                f"(a {parent.result.get('kind')} result); available: "
                f"{', '.join(parent.result.get('components') or []) or 'none'}"
            )
        job_id = new_job_id()
        options = _inherit(parent, spec.name, job_id)
        return await self._admit(engine, sub, job_id, spec.name, parent.mode, parent.prompt,
                                 options, parent=parent)

    async def seed(self, engine: Engine, sub: Submit, parent_id: str) -> Job:
        parent = await engine.parent(sub.user_id, parent_id)
        if parent.result.get("kind") not in (ResultKind.GRID, ResultKind.IMAGE,
                                             ResultKind.UPSCALED):
            raise BadRequest("jobId: only jobs with an image have a seed")
        job_id = new_job_id()
        options = _inherit(parent, "seed", job_id)
        options = dataclasses.replace(options,
                                      parent_seed=MidjourneyOptions.from_json(parent.params).seed)
        return await self._admit(engine, sub, job_id, "seed", parent.mode, parent.prompt,
                                 options, parent=parent)

    async def inpaint(self, engine: Engine, sub: Submit, parent_id: str, mask: str,
                      prompt: str | None) -> Job:
        parent = await engine.parent(sub.user_id, parent_id)
        if "inpaint" not in (parent.result.get("components") or []):
            raise BadRequest("jobId: inpaint needs an upscaled (single image) job")
        text = parent.prompt
        if prompt and prompt.strip():
            text = (await self.check_prompt(prompt)).canonical
        await engine.precheck(self.product, sub, "inpaint", parent.mode.value, parent=parent)
        size = (parent.result.get("width"), parent.result.get("height"))
        mask_png = await engine.decode(_decode_mask, mask, size)
        job_id = new_job_id()
        options = _inherit(parent, "inpaint", job_id)
        return await self._admit(engine, sub, job_id, "inpaint", parent.mode, text, options,
                                 parent=parent, inputs=[mask_png])

    async def blend(self, engine: Engine, sub: Submit, images: list[str],
                    aspect: tuple[int, int], mode: Mode) -> Job:
        if not 2 <= len(images) <= 5:
            raise BadRequest("imgBase64Array: give 2 to 5 images")
        await engine.precheck(self.product, sub, "blend", mode.value)
        pngs = await engine.decode(_decode_all, images, "imgBase64Array")
        job_id = new_job_id()
        options = MidjourneyOptions(version=self.rules.default_version, aspect=list(aspect),
                                    seed=_seed_from(job_id))
        return await self._admit(engine, sub, job_id, "blend", mode, "", options, inputs=pngs)

    async def describe(self, engine: Engine, sub: Submit, base64: str | None,
                       url: str | None, mode: Mode) -> Job:
        job_id = new_job_id()
        options = MidjourneyOptions(version=self.rules.default_version, aspect=[1, 1],
                                    seed=_seed_from(job_id))
        inputs: list[bytes] = []
        if base64:
            await engine.precheck(self.product, sub, "describe", mode.value)
            inputs = await engine.decode(_decode_all, [base64], "base64")
        elif url:
            await engine.check_url(url, "url")
            options = dataclasses.replace(options, url=url)
        else:
            raise BadRequest("base64: give base64 or url")
        return await self._admit(engine, sub, job_id, "describe", mode, "", options,
                                 inputs=inputs)


def _inherit(parent: Job, action: str, job_id: str) -> MidjourneyOptions:
    own = MidjourneyOptions.from_json(parent.params)
    seed = int(own.seed)
    if action.startswith("variation"):
        seed += int(action[-1])
    elif action in ("reroll", "high_variation", "low_variation") or "zoom" in action or (
        action.startswith("pan_") or action in ("make_square", "inpaint")
    ):
        seed = _seed_from(job_id)
    aspect = parent.result.get("aspect") or list(own.aspect)
    return MidjourneyOptions(version=own.version, aspect=aspect, seed=seed)


def _decode_all(values: list[str], field: str) -> list[bytes]:
    out = []
    for i, value in enumerate(values):
        label = f"{field}[{i}]" if len(values) > 1 or field.endswith("Array") else field
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{label}: must be a base64 image")
        image = imaging.decode_base64_image(value, label, max_bytes=MAX_IMAGE_BYTES,
                                            max_pixels=MAX_IMAGE_PIXELS)
        out.append(imaging.encode_png(image))
    return out


def _decode_mask(value: str, size: tuple[Any, Any]) -> bytes:
    mask = imaging.decode_base64_image(value, "mask", mode="L", max_bytes=MAX_IMAGE_BYTES,
                                       max_pixels=MAX_IMAGE_PIXELS)
    if mask.size != size:
        raise BadRequest(
            f"mask: must be {size[0]}x{size[1]} like the job's image, got "
            f"{mask.size[0]}x{mask.size[1]}"
        )
    if mask.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
        raise BadRequest("mask: has no white area to redraw")
    return imaging.encode_png(mask)
