"""The `gengate` client commands against a running gengate (a real `gengate serve` on a
socket, the built-in local upstream): in a real pseudo-terminal (live progress bars, drawn
and finished), without one (plain lines, `--json`), for every registered product, and
every error a user meets (unreachable, bad key, no balance, full queue, rate limit)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gengate.client import actions
from gengate.testing import free_port
from tests.processes import Node, gengate_env, serve_blocking

ADMIN = "cli-admin"
FAIL = "please-fail"
HANG = "please-hang"
#: one job of each product, as a user would type it (a product without an example here
#: fails test_every_product_has_an_example: its commands exist and must be shown working)
EXAMPLES: dict[str, list[str]] = {
    "midjourney": ["imagine", "a red fox in the snow"],
    "flux": ["generate", "a red fox in the snow", "--mode", "flux1-dev"],
    "gpt_image": ["generations", "a red fox in the snow"],
    "gemini_image": ["generate", "a red fox in the snow"],
    "openai_images": ["generations", "a red fox in the snow", "--response-format", "url"],
    "sora": ["generations", "a red fox in the snow", "--model", "sora-2"],
    "gemini_video": ["generations", "a red fox in the snow", "--aspect-ratio", "16:9"],
    "suno": ["music", "--no-custom", "--no-instrumental", "--gpt-description-prompt",
             "a song about a red fox"],
}

pytestmark = pytest.mark.timeout(300)


@dataclass
class Server:
    url: str
    node: Node

    def user(self, balance: float = 1000, max_queue: int | None = None) -> tuple[int, str]:
        body: dict[str, object] = {"email": f"u{time.monotonic_ns()}@cli.test",
                                   "balance": balance}
        if max_queue is not None:
            body["max_queue"] = max_queue
        answer = httpx.post(f"{self.url}/admin/users", json=body,
                            headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]
        return int(answer["userId"]), str(answer["apiKey"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("cli")
    env = gengate_env(folder / "data", admin_key=ADMIN, local_delay="1.2",
                      poll_interval="0.05", upstream_poll_interval="0.05",
                      local_scale="0.25", local_fail_marker=FAIL, local_hang_marker=HANG)
    node = serve_blocking(env, log=folder / "serve.log")
    try:
        yield Server(node.url, node)
    finally:
        node.stop(30)


@dataclass
class Ran:
    status: int
    out: str
    err: str


def _env(server: Server, key: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env["GENGATE_BASE_URL"] = server.url
    if key is not None:
        env["GENGATE_API_KEY"] = key
    env.update(extra)
    return env


def gg(server: Server, key: str | None, *args: str, **extra: str) -> Ran:
    """`gengate ARGS` with its output going to pipes (not a terminal)."""
    done = subprocess.run([sys.executable, "-m", "gengate", *args], capture_output=True,
                          text=True, timeout=120, env=_env(server, key, **extra))
    return Ran(done.returncode, done.stdout, done.stderr)


def gg_tty(server: Server, key: str, *args: str, columns: int = 120) -> Ran:
    """`gengate ARGS` in a real pseudo-terminal of ``columns`` columns; all it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = _env(server, key, TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "gengate", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed: the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(master)
    status = proc.wait(30)
    return Ran(status, b"".join(chunks).decode(errors="replace"), "")


def _registered() -> list[str]:
    return list(actions())


#: products whose routes answer the result itself, with no job id to follow (OpenAI's
#: ImagesResponse): no bar to draw; test_a_route_answering_its_result_prints_it covers them
ANSWERS_ITS_RESULT = {"openai_images"}


def _with_jobs() -> list[str]:
    return [p for p in _registered() if p not in ANSWERS_ITS_RESULT]


# -- every product ------------------------------------------------------------------------
def test_every_product_has_an_example() -> None:
    missing = set(_registered()) - set(EXAMPLES)
    assert not missing, f"products without a command-line example here: {missing}"
    for product in _registered():
        assert EXAMPLES[product][0] in actions()[product], (product, EXAMPLES[product])


@pytest.mark.parametrize("product", _with_jobs())
def test_progress_bars_in_a_terminal(server: Server, product: str) -> None:
    _, key = server.user()
    ran = gg_tty(server, key, product, *EXAMPLES[product], "--interval", "0.1")
    assert ran.status == 0, ran.out
    # rich drew a live bar: redrawn in place (cursor controls), its bar glyphs, finished
    assert "\x1b[" in ran.out
    assert "━" in ran.out
    assert "100%" in ran.out
    assert "SUCCESS" in ran.out
    assert "Traceback" not in ran.out


def test_several_jobs_each_with_its_bar(server: Server) -> None:
    _, key = server.user()
    ran = gg_tty(server, key, "midjourney", "imagine", "a red fox", "a grey owl",
                 "--count", "2", "--interval", "0.1")
    assert ran.status == 0, ran.out
    final = ran.out.rsplit("\x1b[?25h", 1)[0]  # the screen as the bars were left
    assert final.count("SUCCESS") >= 4
    assert ran.out.count("midjourney imagine 'a red fox'") >= 2
    assert ran.out.count("midjourney imagine 'a grey owl'") >= 2


@pytest.mark.parametrize("product", _with_jobs())
def test_plain_lines_without_a_terminal(server: Server, product: str) -> None:
    _, key = server.user()
    ran = gg(server, key, product, *EXAMPLES[product], "--interval", "0.1")
    assert ran.status == 0, ran.err
    lines = ran.out.splitlines()
    job_id = lines[0].split()[0]
    assert lines[0].startswith(f"{job_id} submitted {product} {EXAMPLES[product][0]}")
    last = lines[-1].split()
    assert last[0] == job_id and last[1] == "SUCCESS"
    assert last[3].startswith("http://")
    assert "\x1b" not in ran.out and "━" not in ran.out
    assert ran.err == ""


@pytest.mark.parametrize("product", _with_jobs())
def test_json_one_object_per_finished_job_and_downloads(server: Server, product: str,
                                                        tmp_path: Path) -> None:
    _, key = server.user()
    ran = gg(server, key, product, *EXAMPLES[product], "--count", "2", "--json",
             "--interval", "0.1", "--out", str(tmp_path))
    assert ran.status == 0, ran.err
    bodies = [json.loads(line) for line in ran.out.splitlines()]
    assert len(bodies) == 2
    for body in bodies:
        assert body["status"] == "SUCCESS"
        assert body["files"], body
        for path in body["files"]:
            saved = Path(path)
            assert saved.parent == tmp_path and body["jobId"] in saved.name
            assert saved.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(Path(p).name for b in bodies for p in b["files"])


def test_a_failed_job_exits_1(server: Server) -> None:
    _, key = server.user()
    ran = gg(server, key, "imagine", f"a red fox {FAIL}", "--interval", "0.1")
    assert ran.status == 1
    assert ran.out.splitlines()[-1].split()[1] == "FAILED"


def test_fetch_list_cancel_info_wait(server: Server) -> None:
    _, key = server.user(balance=50)
    job_id = gg(server, key, "imagine", f"an owl {HANG}", "--no-wait").out.strip()
    done = gg(server, key, "imagine", "a finch", "--json", "--interval", "0.1")
    finished = json.loads(done.out)["jobId"]

    fetched = gg(server, key, "fetch", finished)
    assert fetched.status == 0 and json.loads(fetched.out)["status"] == "SUCCESS"
    listed = gg(server, key, "list").out.splitlines()
    assert [line.split("\t")[0] for line in listed] == [finished, job_id]
    assert listed[0].split("\t")[1:4] == ["midjourney", "imagine", "SUCCESS"]
    listed_json = [json.loads(line) for line in gg(server, key, "list", "--json").out.splitlines()]
    assert {item["jobId"] for item in listed_json} == {finished, job_id}

    waited = gg(server, key, "wait", job_id, "--wait-timeout", "0.3", "--interval", "0.1")
    assert waited.status == 5
    cancelled = gg(server, key, "cancel", job_id)
    assert cancelled.status == 0 and cancelled.out.split()[:2] == [job_id, "FAILED"]
    info = json.loads(gg(server, key, "info").out)
    assert info["in_progress"] == 0 and info["freeze_balance"] == 0
    missing = gg(server, key, "fetch", "no-such-job")
    assert missing.status == 3 and "404" in missing.err


# -- errors: one line that says what to do, never a traceback ----------------------------
def _one_line(ran: Ran) -> str:
    assert ran.out == ""
    assert "Traceback" not in ran.err
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    return lines[0]


def test_unreachable_server(server: Server) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    ran = gg(server, "gg-any", "imagine", "a fox", GENGATE_BASE_URL=closed)
    assert ran.status == 4
    line = _one_line(ran)
    assert closed in line and "GENGATE_BASE_URL" in line and "gengate serve" in line
    debug = gg(server, "gg-any", "imagine", "a fox", "--debug", GENGATE_BASE_URL=closed)
    assert debug.status != 0 and "Traceback" in debug.err


def test_no_key_and_a_bad_key(server: Server) -> None:
    ran = gg(server, None, "imagine", "a fox")
    assert ran.status == 2 and "GENGATE_API_KEY" in _one_line(ran)
    ran = gg(server, "gg-wrong", "imagine", "a fox")
    assert ran.status == 3
    line = _one_line(ran)
    assert "401" in line and "GENGATE_API_KEY" in line


def test_no_balance(server: Server) -> None:
    _, key = server.user(balance=0)
    ran = gg(server, key, "imagine", "a fox")
    assert ran.status == 3
    line = _one_line(ran)
    assert "402" in line and "balance" in line and "topup" in line


def test_full_queue(server: Server) -> None:
    _, key = server.user(max_queue=1)
    first = gg(server, key, "imagine", f"a fox {HANG}", "--no-wait")
    assert first.status == 0
    ran = gg(server, key, "imagine", "a second fox")
    assert ran.status == 3
    line = _one_line(ran)
    assert "499" in line and "queue is full" in line and "max_queue" in line
    gg(server, key, "cancel", first.out.strip())


def test_rate_limit(server: Server) -> None:
    user_id, key = server.user()
    httpx.patch(f"{server.url}/admin/users/{user_id}", json={"rate_per_minute": 1},
                headers={"Authorization": f"Bearer {ADMIN}"}).raise_for_status()
    httpx.get(f"{server.url}/midjourney/v1/info", headers={"TT-API-KEY": key})
    ran = gg(server, key, "imagine", "a fox")
    assert ran.status == 3
    line = _one_line(ran)
    assert "429" in line and "retry in" in line and "set-rate" in line


def test_a_field_the_route_lacks_is_refused_before_sending(server: Server) -> None:
    ran = gg(server, "gg-any", "midjourney", "imagine", "a fox", "--mode", "slow")
    assert ran.status == 2 and "slow" in ran.err


def test_midjourney_actions_blend_describe_seed(server: Server, tmp_path: Path) -> None:
    _, key = server.user()
    first = gg(server, key, "imagine", "a red fox", "a grey owl", "--json", "--interval",
               "0.1", "--out", str(tmp_path))
    assert first.status == 0, first.err
    bodies = [json.loads(line) for line in first.out.splitlines()]
    images = [Path(b["files"][0]) for b in bodies]
    parent = bodies[0]["jobId"]

    steps = {
        "action": ["action", "--job-id", parent, "--action", "upsample1"],
        "seed": ["seed", "--job-id", parent],
        "blend": ["blend", "--img-base64-array", f"@{images[0]}",
                  "--img-base64-array", f"@{images[1]}", "--dimensions", "LANDSCAPE"],
        "describe": ["describe", "--base64", f"@{images[0]}"],
    }
    for name, args in steps.items():
        ran = gg(server, key, "midjourney", *args, "--json", "--interval", "0.1")
        assert ran.status == 0, (name, ran.err)
        body = json.loads(ran.out)
        expected = "upsample1" if name == "action" else name
        assert body["status"] == "SUCCESS" and body["data"]["action"] == expected, body
    checked = gg(server, key, "midjourney", "promptCheck", "a calm lake")
    assert checked.status == 0 and checked.out.strip(), checked.err


def test_a_multipart_route_uploads_its_files(server: Server, tmp_path: Path) -> None:
    if "flux" not in _registered():
        pytest.skip("no Flux product in this build")
    _, key = server.user()
    first = gg(server, key, "flux", "generate", "a lighthouse", "--mode", "flux1-dev",
               "--json", "--interval", "0.1", "--out", str(tmp_path))
    assert first.status == 0, first.err
    picture = json.loads(first.out)["files"][0]
    ran = gg(server, key, "flux", "edits", "the same at night", "--image", f"@{picture}",
             "--json", "--interval", "0.1")
    assert ran.status == 0, ran.err
    body = json.loads(ran.out)
    assert body["status"] == "SUCCESS"


def test_results_that_cannot_be_saved_are_one_line(server: Server, tmp_path: Path) -> None:
    _, key = server.user()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    ran = gg(server, key, "imagine", "a fox", "--json", "--interval", "0.1",
             "--out", str(blocked / "shots"))
    assert ran.status == 1
    assert "could not save the results" in _one_line(ran)


@pytest.mark.parametrize("product", sorted(ANSWERS_ITS_RESULT & set(_registered())))
def test_a_route_answering_its_result_prints_it(server: Server, product: str) -> None:
    _, key = server.user()
    ran = gg(server, key, product, *EXAMPLES[product])
    assert ran.status == 0, ran.err
    answer = json.loads(ran.out)
    assert "http://" in json.dumps(answer)
    assert ran.err == ""
