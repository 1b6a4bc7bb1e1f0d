"""Input limits: the most any request field may hold.

Every string and list a client sends is bounded, so that no request can make the server
spend unbounded time or memory on it, and nothing unbounded is charged or stored.

* A prompt is at most :data:`MAX_PROMPT_CHARS` characters: Midjourney takes its prompt as the
  text option of Discord's ``/imagine`` command, and Discord caps a command's text option at
  6,000 characters; a longer prompt could never run upstream.
* An input image (blend, describe, inpaint masks) is at most :data:`MAX_IMAGE_BYTES` bytes
  once base64-decoded and at most :data:`MAX_IMAGE_PIXELS` pixels (4096 x 4096, the largest
  side Midjourney produces), checked from the image's header before its pixels are decoded.

Pure constants: the request models (and so the OpenAPI document) are built from them.
"""

from __future__ import annotations

__all__ = [
    "MAX_ACTION_CHARS",
    "MAX_ID_CHARS",
    "MAX_IMAGE_BASE64_CHARS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NOTE_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_URL_CHARS",
]

MAX_PROMPT_CHARS = 6000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
#: base64 of the largest image, with room for a ``data:image/...;base64,`` prefix and line breaks
MAX_IMAGE_BASE64_CHARS = (MAX_IMAGE_BYTES + 2) // 3 * 4 * 77 // 76 + 256
MAX_ID_CHARS = 64  # job and delivery ids are UUIDs (36 characters)
MAX_ACTION_CHARS = 64
MAX_URL_CHARS = 2048
MAX_NOTE_CHARS = 500
