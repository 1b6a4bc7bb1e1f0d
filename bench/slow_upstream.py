"""A slow midjourney-proxy for ``bench/inflight.py``: tens of thousands of tasks at once,
each running a random time between ``--min`` and ``--max`` seconds.

It answers the routes of novicezk's midjourney-proxy that gengate's worker uses for
imagine jobs (``POST /mj/submit/imagine``, ``POST /mj/task/list-by-condition`` with
``ids``, ``GET /mj/task/{id}/fetch``, ``GET /mj/task/list``, ``GET /mj/account/list``,
``GET /mj/image/{id}.png``), in the shapes of :mod:`gengate.testing.mjproxy`, which holds the
full fake and the notes on where each behaviour comes from. Unlike that fake, it keeps its
tasks by end time (a heap), so that a request costs the same with 10 or 50,000 tasks, and
every result is the same small PNG. Progress moves in five steps of 20 % (the proxies copy
whatever steps Discord's messages show; five keeps the calls below countable). It never
queues a task (its instance takes 100,000 at once) and none fails.

A submit's ``notifyHook`` is called as novicezk's proxy calls it (NotifyServiceImpl): the
task's JSON POSTed, unsigned, not retried, at the submit and at each change of status or
progress (SUBMITTED, then IN_PROGRESS at 10 %, 20 %, ... of its run, then SUCCESS), at
most 64 calls at once.

``GET /bench/ends`` answers, for every task that ended, its id and the time it ended (epoch
seconds): what the bench compares the jobs' end times with; ``GET /bench/calls`` how many
notifyHook calls were made and how many failed.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import io
import itertools
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
from gengate.testing.http import LocalServer, read_request  # noqa: E402

_TASK = re.compile(r"^/mj/task/([^/]+)/fetch$")
_IMAGE = re.compile(r"^/mj/image/([^/.]+)\.png$")


class SlowProxy(LocalServer):
    def __init__(self, port: int, low: float, high: float, seed: int = 1):
        self.port = port
        self.low, self.high = low, high
        self.rng = random.Random(seed)
        self.ids = itertools.count(1_730_000_000_000_000)
        #: id -> [submitted, ends, prompt, state, notifyHook]
        self.tasks: dict[str, list[Any]] = {}
        self.running: list[tuple[float, str]] = []  # (ends, id)
        self.ended: dict[str, float] = {}
        self.requests = 0
        #: (when, id): the notifyHook calls due, by time
        self.calls: list[tuple[float, str]] = []
        self.called = self.call_failures = 0
        #: seconds from a task's end to the start of its end call (this proxy's own delay)
        self.end_call_lateness: list[float] = []
        self._calling: set[asyncio.Task[None]] = set()
        self._notifier: asyncio.Task[None] | None = None
        buf = io.BytesIO()
        Image.new("RGB", (128, 128), (40, 90, 160)).save(buf, "PNG")
        self.png = buf.getvalue()

    async def __aenter__(self) -> SlowProxy:
        await super().__aenter__()
        self._notifier = asyncio.create_task(self._notify_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._notifier is not None:
            self._notifier.cancel()
        await super().__aexit__(*exc)

    async def _notify_loop(self) -> None:
        gate = asyncio.Semaphore(64)
        async with httpx.AsyncClient(timeout=30.0,
                                     limits=httpx.Limits(max_connections=64)) as http:
            while True:
                await asyncio.sleep(0.02)
                now = time.time()
                self._settle()  # after now: a task that ends by now is ended in its call
                while self.calls and self.calls[0][0] <= now:
                    due, task_id = heapq.heappop(self.calls)
                    await gate.acquire()
                    call = asyncio.create_task(self._call(http, task_id, due, gate))
                    self._calling.add(call)
                    call.add_done_callback(self._calling.discard)

    async def _call(self, http: httpx.AsyncClient, task_id: str, due: float,
                    gate: asyncio.Semaphore) -> None:
        if task_id in self.ended and due >= self.tasks[task_id][1]:
            self.end_call_lateness.append(time.time() - due)
        try:
            answer = await http.post(self.tasks[task_id][4],
                                     content=orjson.dumps(self._json(task_id)),
                                     headers={"content-type": "application/json"})
            self.called += 1
            if answer.status_code >= 300:
                self.call_failures += 1
        except httpx.HTTPError:
            self.call_failures += 1
        finally:
            gate.release()

    def _settle(self) -> None:
        now = time.time()
        while self.running and self.running[0][0] <= now:
            ends, task_id = heapq.heappop(self.running)
            self.ended[task_id] = ends

    def _json(self, task_id: str) -> dict[str, Any]:
        submitted, ends, prompt, state, _ = self.tasks[task_id]
        now = time.time()
        done = task_id in self.ended
        if done:
            status, progress = "SUCCESS", "100%"
        else:
            share = (now - submitted) / (ends - submitted)
            status = "SUBMITTED" if share < 0.1 else "IN_PROGRESS"
            progress = f"{min(80, int(share * 5) * 20)}%"
        return {"id": task_id, "action": "IMAGINE", "status": status, "prompt": prompt,
                "promptEn": prompt, "description": "/imagine " + prompt,
                "submitTime": int(submitted * 1000), "startTime": int(submitted * 1000),
                "finishTime": int(ends * 1000) if done else None, "progress": progress,
                "imageUrl": f"{self.base_url}/mj/image/{task_id}.png" if done else None,
                "failReason": None, "state": state,
                "properties": {"finalPrompt": prompt, "discordInstanceId": "instance1"}}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, path, _, body = await read_request(reader)
                self.requests += 1
                status, ctype, data = self._answer(method, path.split("?", 1)[0], body)
                writer.write(f"HTTP/1.1 {status} OK\r\ncontent-type: {ctype}\r\n"
                             f"content-length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        self._settle()
        data = orjson.loads(body) if body else {}
        if method == "POST" and path == "/mj/submit/imagine":
            task_id = str(next(self.ids))
            now = time.time()
            ends = now + self.rng.uniform(self.low, self.high)
            hook = data.get("notifyHook")
            self.tasks[task_id] = [now, ends, str(data.get("prompt", "")), data.get("state"),
                                   hook]
            heapq.heappush(self.running, (ends, task_id))
            if hook:
                for share in (0.0, 0.1, 0.2, 0.4, 0.6, 0.8):
                    heapq.heappush(self.calls, (now + share * (ends - now), task_id))
                heapq.heappush(self.calls, (ends, task_id))
            return _ok({"code": 1, "description": "Submit success", "result": task_id})
        if method == "POST" and path == "/mj/task/list-by-condition":
            ids = data.get("ids") or []
            return _ok([self._json(str(i)) for i in ids if str(i) in self.tasks])
        if method == "GET" and path == "/mj/task/list":
            newest = sorted(self.tasks, key=lambda i: self.tasks[i][0])[-100:]
            return _ok([self._json(i) for i in reversed(newest)])
        if method == "GET" and path == "/mj/account/list":
            return _ok([{"id": "instance1", "channelId": "0000000001", "enable": True,
                         "lock": False, "disabledReason": None, "coreSize": 100_000,
                         "queueSize": 100_000, "running": len(self.running), "queued": 0}])
        if method == "GET" and path == "/bench/ends":
            return _ok(self.ended)
        if method == "GET" and path == "/bench/calls":
            late = sorted(self.end_call_lateness)
            return _ok({"called": self.called, "failed": self.call_failures,
                        "end_calls": len(late),
                        "end_call_late_p50_s": late[len(late) // 2] if late else None,
                        "end_call_late_p99_s": late[int(len(late) * 0.99)] if late else None})
        match = _TASK.match(path)
        if method == "GET" and match and match[1] in self.tasks:
            return _ok(self._json(match[1]))
        match = _IMAGE.match(path)
        if method == "GET" and match and match[1] in self.ended:
            return 200, "image/png", self.png
        return 404, "application/json", b'{"code":404,"description":"not found"}'


def _ok(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", orjson.dumps(value)


async def _main(port: int, low: float, high: float) -> None:
    async with SlowProxy(port, low, high) as proxy:
        sys.stdout.write(f"slow midjourney-proxy on {proxy.base_url}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min", type=float, default=180.0, help="shortest task, seconds")
    parser.add_argument("--max", type=float, default=480.0, help="longest task, seconds")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_main(args.port, args.min, args.max))


if __name__ == "__main__":
    main()
