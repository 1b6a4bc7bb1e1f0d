"""The real Claude Code CLI (npm package ``@anthropic-ai/claude-code``) through gengate to
the fake Anthropic upstream, a tool-use turn included: what reached the upstream is what
the CLI sent, byte for byte, but for the key.

``make test`` installs the CLI into ``.node/`` (ignored by git) where npm is available;
``GENGATE_TEST_CLAUDE`` names another binary. Without one the test skips loudly, and fails
under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from gengate.config import Settings
from gengate.testing import FakeAnthropic, serve_gateway
from gengate.testing.tap import RecordingTap
from tests.acceptance.test_llm_relay import account, llm_settings, usage_rows
from tests.conftest import need_service

REPO = Path(__file__).resolve().parents[2]
#: what the CLI sends that gengate must pass on unchanged
PASSED = ("anthropic-version", "anthropic-beta", "user-agent", "x-app",
          "x-claude-code-session-id", "content-type")


def claude_cli() -> str:
    found = (os.environ.get("GENGATE_TEST_CLAUDE")
             or next((str(p) for p in [REPO / ".node" / "node_modules" / ".bin" / "claude"]
                      if p.exists()), None)
             or shutil.which("claude"))
    if not found:
        need_service("the Claude Code CLI", "run `make test` (npm install into .node/) or set "
                     "GENGATE_TEST_CLAUDE")
    assert found is not None
    return found


async def test_claude_code_through_gengate_with_a_tool_turn(settings: Settings,
                                                            tmp_path: Path) -> None:
    cli = claude_cli()
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("the tide comes in at noon\n")
    async with FakeAnthropic(input_tokens=40, output_tokens=6) as up:
        up.tool_call = ("Read", {"file_path": str(work / "notes.txt")})
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            port = int(gw.base_url.rsplit(":", 1)[1])
            async with RecordingTap(port) as tap:
                env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home"),
                       "ANTHROPIC_BASE_URL": tap.base_url, "ANTHROPIC_API_KEY": key,
                       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                       "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1"}
                proc = await asyncio.create_subprocess_exec(
                    cli, "-p", "What does notes.txt say?", "--model", "claude-fake-1",
                    "--allowedTools", "Read", "--output-format", "json", env=env,
                    cwd=str(work), stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 180)
            assert proc.returncode == 0, err.decode()[-2000:]
            result = json.loads(out)
            assert result["is_error"] is False and result["result"] == "word0 word1 word2 "
            assert result["num_turns"] == 2

            sent = [r for r in tap.requests if r.path.startswith("/v1/messages")]
            got = [r for r in up.requests if r.path.startswith("/v1/messages")]
            assert len(sent) == len(got) >= 2
            for client, upstream in zip(sent, got, strict=True):
                assert upstream.path == client.path == "/v1/messages?beta=true"
                assert upstream.body == client.body  # byte for byte
                for name in PASSED:
                    assert upstream.headers.get(name) == client.headers.get(name), name
                assert client.headers["x-api-key"] == key
                assert upstream.headers["x-api-key"] == "sk-up-a1"
                assert key not in str(upstream.headers)
            # the tool turn: the model asked for Read, the CLI ran it and sent its result
            last = got[-1].json()["messages"][-1]
            results = [c for c in last["content"] if c.get("type") == "tool_result"]
            assert results and results[0]["tool_use_id"] == "toolu_fake1"
            assert "the tide comes in at noon" in json.dumps(results[0]["content"])
            rows = await usage_rows(gw, key)
            assert len(rows) == len(got) and {r["status"] for r in rows} == {"ok"}
            assert all(r["input_tokens"] == 40 and r["output_tokens"] == 6 for r in rows)


@pytest.fixture(autouse=True)
def _cli_needs_no_gengate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
