"""The node's identity: the name a process holds job and delivery leases under.

A name is kept as a lock file in ``<data dir>/nodes/``, named after the host. A starting
process takes the first of its host's names whose lock no running process holds (the kernel
drops the lock of a process that died, even of one killed with SIGKILL), or makes a new one.
Names of other hosts are never taken: a lock is only as good as the kernel that holds it,
and hosts sharing the data directory over a network file system must not share a name.

So a process that restarts in place is the same node as before: it gives itself back the
leases its previous run left at once instead of waiting for them to lapse, while processes
that run side by side on one data directory always have different names.
``GENGATE_NODE_ID`` names the node explicitly (e.g. a replica's ordinal, kept across
re-creation of its container); it is locked the same way, and must be unique in the
cluster.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import uuid
from pathlib import Path
from typing import IO

from gengate.errors import Conflict

__all__ = ["NodeIdentity"]


class NodeIdentity:
    """A node name, held (locked) until :meth:`release`."""

    def __init__(self, name: str, handle: IO[bytes]):
        self.name = name
        self._handle: IO[bytes] | None = handle

    @classmethod
    def acquire(cls, data_dir: Path, node_id: str | None = None) -> NodeIdentity:
        folder = data_dir / "nodes"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if node_id is not None:
            held = _lock(folder / f"{node_id}.lock")
            if held is None:
                raise Conflict(f"GENGATE_NODE_ID: node {node_id} is already running here")
            return cls(node_id, held)
        host = _host()
        while True:
            mine = re.compile(rf"{re.escape(host)}-[0-9a-f]{{8}}")
            for path in sorted(folder.glob(f"{host}-*.lock")):
                if not mine.fullmatch(path.stem):
                    continue  # another host whose name starts like this one's
                held = _lock(path)
                if held is not None:
                    return cls(path.stem, held)
            name = f"{host}-{uuid.uuid4().hex[:8]}"
            held = _lock(folder / f"{name}.lock")
            if held is not None:
                return cls(name, held)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:24] or "node"


def _lock(path: Path) -> IO[bytes] | None:
    """The open, locked file; None when another process holds it."""
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
