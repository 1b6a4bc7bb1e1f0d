"""gengate as real child processes: ``gengate serve`` on a socket the test bound itself
(handed over with ``--fd``, so no other process can take the port in between, and the
first request waits in the socket's queue until the server accepts it), ``gengate worker``
and the rest, each one's output kept in a file and readable while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: how long a process may take to start on a loaded machine
START_TIMEOUT = 60.0
#: the size of the pipe a child writes its output to (Linux's default is 64 KiB)
PIPE_BYTES = 1 << 20


def gengate_env(data: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any ``GENGATE_*`` variable, then
    ``GENGATE_DATA_DIR`` and ``settings`` (``database_url="..."`` becomes
    ``GENGATE_DATABASE_URL``; names already spelled ``GENGATE_X`` or in upper case, such as
    ``TMPDIR``, are kept as given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env["GENGATE_DATA_DIR"] = str(data)
    for name, value in settings.items():
        env[name if name.isupper() else f"GENGATE_{name.upper()}"] = value
    return env


@dataclass
class Output:
    """A child's stdout and stderr, copied into ``path`` by a thread as they come, so a test
    can await a line instead of polling the file."""

    path: Path
    _text: bytearray = field(default_factory=bytearray)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def pump(self, pipe: int) -> None:
        with open(pipe, "rb", buffering=0) as source, open(self.path, "wb") as sink:
            while chunk := source.read(65536):
                sink.write(chunk)
                sink.flush()
                with self._changed:
                    self._text += chunk
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return self._text.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Whether ``needle`` appeared within ``timeout`` seconds (False at end of output)."""
        wanted = needle.encode()
        with self._changed:
            self._changed.wait_for(lambda: wanted in self._text or self._closed, timeout)
            return wanted in self._text


@dataclass
class Node:
    """One gengate process; ``url`` is set for ``serve``."""

    proc: subprocess.Popen[bytes]
    out: Output
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out.text()

    def running(self) -> bool:
        return self.proc.poll() is None

    async def until_output(self, needle: str, timeout: float = START_TIMEOUT) -> None:
        """Wait (in a thread, without blocking the event loop) until the process prints
        ``needle``; fail with its output if it exits or stays silent."""
        if not await asyncio.to_thread(self.out.wait_for, needle, timeout):
            raise AssertionError(f"gengate never printed {needle!r}:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def exit_status(self, timeout: float = 30.0) -> int:
        """Wait for the process to end without blocking the event loop."""
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gengate did not exit:\n{self.output()}") from None

    async def shutdown(self, timeout: float = 15.0) -> None:
        """:meth:`stop` without blocking the event loop (the process may still be talking
        to servers this test runs in it)."""
        await asyncio.to_thread(self.stop, timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


def start(env: dict[str, str], *args: str, log: Path,
          listener: socket.socket | None = None) -> Node:
    """``python -m gengate *args`` with ``env``; its output goes to ``log`` (``listener``:
    a bound socket the child inherits)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    read, write = os.pipe()
    try:
        # room for a burst of output while this process is busy elsewhere: a child whose
        # pipe is full waits in its next write (the thread below empties it as it can)
        with contextlib.suppress(OSError):  # a user over its pipe quota keeps 64 KiB
            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        proc = subprocess.Popen([sys.executable, "-m", "gengate", *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=write, stderr=write,
                                pass_fds=[listener.fileno()] if listener else [])
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    out = Output(log)
    threading.Thread(target=out.pump, args=(read,), name=f"gengate-{proc.pid}-output",
                     daemon=True).start()
    return Node(proc, out)


def _listener() -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _start_serve(env: dict[str, str], args: tuple[str, ...], log: Path) -> Node:
    with _listener() as sock:  # the child holds its own copy from here on
        node = start(env, "serve", "--fd", str(sock.fileno()), *args, log=log,
                     listener=sock)
        node.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return node


def _not_up(node: Node, why: object) -> AssertionError:
    node.stop()
    return AssertionError(f"gengate serve did not come up ({why}):\n{node.output()}")


async def serve(env: dict[str, str], *args: str, log: Path) -> Node:
    """``gengate serve *args``, once it answers ``/healthz``. The request waits in the
    socket's queue while the server starts; if the server dies its socket closes and the
    request fails at once."""
    node = _start_serve(env, args, log)
    try:
        async with httpx.AsyncClient(timeout=START_TIMEOUT) as http:
            answer = await http.get(f"{node.url}/healthz")
    except httpx.HTTPError as exc:
        raise _not_up(node, repr(exc)) from exc
    if answer.status_code != 200:
        raise _not_up(node, f"/healthz answered {answer.status_code}: {answer.text}")
    return node


def serve_blocking(env: dict[str, str], *args: str, log: Path) -> Node:
    """:func:`serve` for code without an event loop (a module-scoped fixture)."""
    node = _start_serve(env, args, log)
    try:
        answer = httpx.get(f"{node.url}/healthz", timeout=START_TIMEOUT)
    except httpx.HTTPError as exc:
        raise _not_up(node, repr(exc)) from exc
    if answer.status_code != 200:
        raise _not_up(node, f"/healthz answered {answer.status_code}: {answer.text}")
    return node
