"""Node identities: distinct for processes side by side, reused by the next process once
the holder has ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from gengate.errors import Conflict
from gengate.identity import NodeIdentity


def test_holders_side_by_side_get_different_names(tmp_path: Path) -> None:
    first = NodeIdentity.acquire(tmp_path)
    second = NodeIdentity.acquire(tmp_path)
    try:
        assert first.name != second.name
    finally:
        first.release()
        second.release()


def test_a_released_name_is_taken_again(tmp_path: Path) -> None:
    first = NodeIdentity.acquire(tmp_path)
    name = first.name
    first.release()
    again = NodeIdentity.acquire(tmp_path)
    try:
        assert again.name == name
    finally:
        again.release()


def test_an_explicit_node_id_runs_once(tmp_path: Path) -> None:
    held = NodeIdentity.acquire(tmp_path, "edge-1")
    try:
        assert held.name == "edge-1"
        with pytest.raises(Conflict, match="edge-1 is already running"):
            NodeIdentity.acquire(tmp_path, "edge-1")
    finally:
        held.release()
    NodeIdentity.acquire(tmp_path, "edge-1").release()
