"""Runs the fake Anthropic upstream on a port until killed (for ``bench/llm.py``)."""

from __future__ import annotations

import asyncio
import sys

from gengate.testing.llm import FakeAnthropic


async def main(port: int) -> None:
    upstream = FakeAnthropic(record=False, chunks=20)
    upstream.port = port
    async with upstream:
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
