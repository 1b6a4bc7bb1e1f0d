"""What the video products (Sora, Gemini video) share in their answers: the stored result
file of each role, and the charged quota as the contract writes it."""

from __future__ import annotations

from gengate.jobs import Job
from gengate.quota import from_milli

__all__ = ["output_url", "quota_text"]


def quota_text(job: Job) -> str:
    """The charged quota as the contract writes it: ``"3"``, ``"0.5"``."""
    return f"{from_milli(job.charged()[1]):g}"


def output_url(job: Job, role: str) -> str | None:
    """The URL of the stored result file of ``role`` (``video``, ``thumbnail``)."""
    for item in job.result.get("outputs") or ():
        if isinstance(item, dict) and item.get("role") == role:
            return str(item["url"])
    return None
