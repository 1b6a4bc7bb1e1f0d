"""Midjourney's TTAPI shapes of a job: the fetch body (also the webhook body) and
fetch-list items."""

from __future__ import annotations

from typing import Any

from gengate.clock import timestamp
from gengate.jobs import Job, JobStatus
from gengate.quota import from_milli

__all__ = ["fetch_body", "list_item"]


def _prompt_field(job: Job) -> str:
    prompts = job.result.get("prompts")
    if prompts:
        return "\n\n".join(f"{i}\ufe0f\u20e3 {p}" for i, p in enumerate(prompts, 1))
    return job.prompt


def fetch_body(job: Job) -> dict[str, Any]:
    """``{"status", "message", "jobId", "data"}`` exactly as fetch and webhooks send it."""
    result = job.result
    failed = job.status is JobStatus.FAILED
    mode, quota = job.charged()
    data = {
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
    return {"status": job.status.value, "message": job.message, "jobId": job.id, "data": data}


def list_item(job: Job) -> dict[str, Any]:
    """A ``fetch-list`` item: snake_case keys and an integer status."""
    result = job.result
    mode, quota = job.charged()
    return {
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
