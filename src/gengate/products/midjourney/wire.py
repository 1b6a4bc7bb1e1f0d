"""Midjourney's TTAPI shapes of a job: the fetch body (also the webhook body) and
fetch-list items."""

from __future__ import annotations

from typing import Any

from gengate.clock import timestamp
from gengate.jobs import Job, JobStatus
from gengate.quota import from_milli

__all__ = ["expired_message", "fetch_body", "list_item"]


def _prompt_field(job: Job) -> str:
    prompts = job.result.get("prompts")
    if prompts:
        return "\n\n".join(f"{i}\ufe0f\u20e3 {p}" for i, p in enumerate(prompts, 1))
    return job.prompt


def expired_message(result: dict[str, Any]) -> str:
    days = result.get("retentionDays")
    kept = f" after {days:g} days" if isinstance(days, int | float) else ""
    return f"The result files of this job expired{kept} and were deleted"


def _live(result: dict[str, Any]) -> dict[str, Any]:
    """A result whose files the retention pass deleted shows no URLs: they would be dead."""
    if not result.get("expired"):
        return result
    return {**result, "cdnImage": None, "discordImage": None, "images": None}


def fetch_body(job: Job) -> dict[str, Any]:
    """``{"status", "message", "jobId", "data"}`` exactly as fetch and webhooks send it;
    a job whose result files expired says so in ``message`` and ``data.expired``."""
    result = _live(job.result)
    failed = job.status is JobStatus.FAILED
    mode, quota = job.charged()
    data: dict[str, Any] = {
        "action": job.action,
        "jobId": job.id,
        "progress": None if failed else str(job.progress),
        "prompt": _prompt_field(job),
        "quota": str(from_milli(quota)),
        "mode": mode,
        "discordImage": result.get("discordImage"),
        "cdnImage": result.get("cdnImage"),
        "width": result.get("width"),
        "height": result.get("height"),
        "hookUrl": job.hook_url,
        "components": result.get("components"),
        "seed": result.get("seed"),
        "images": result.get("images"),
        "prompts": result.get("prompts"),
        "submitTime": timestamp(job.created_at),
        "finishTime": timestamp(job.finished_at),
    }
    message = job.message
    if result.get("expired"):
        data["expired"] = True
        message = expired_message(result)
    return {"status": job.status.value, "message": message, "jobId": job.id, "data": data}


def list_item(job: Job) -> dict[str, Any]:
    """A ``fetch-list`` item: snake_case keys and an integer status."""
    result = _live(job.result)
    mode, quota = job.charged()
    item: dict[str, Any] = {
        "job_id": job.id,
        "model": mode,
        "action": job.action,
        "quota": from_milli(quota),
        "status": job.status.code,
        "status_name": job.status.value,
        "progress": str(job.progress),
        "prompt": _prompt_field(job),
        "message": job.message,
        "discord_image": result.get("discordImage"),
        "cdn_image": result.get("cdnImage"),
        "width": result.get("width"),
        "height": result.get("height"),
        "hook_url": job.hook_url,
        "components": result.get("components"),
        "seed": result.get("seed"),
        "images": result.get("images"),
        "created_at": timestamp(job.created_at),
        "finished_at": timestamp(job.finished_at),
    }
    if result.get("expired"):
        item.update(expired=True, message=expired_message(result))
    return item
