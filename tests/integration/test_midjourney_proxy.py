"""The midjourney-proxy adapter against the fake midjourney-proxy, over real sockets.

Tasks run for a few hundredths of a second in the fake; tests poll with a bounded
``asyncio.timeout`` until the state they want. The fake's own protocol (queueing, codes)
is checked directly with a manual clock, so those tests never wait at all.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw

from gengate.accounts import FailureKind
from gengate.products.midjourney import imaging
from gengate.products.midjourney.prompt import is_illegal_prompt_failure
from gengate.products.midjourney.providers.midjourney_proxy import (
    ACCOUNT_PREFIX,
    MidjourneyProxyProvider,
    classify,
    failure_kind,
    with_mode,
)
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState
from gengate.testing import free_port
from gengate.testing.mjproxy import NOVICEZK, FakeMidjourneyProxy

SECRET = "mj-secret-7f3a9c"
OTHER = "mj-secret-other-51d2"
FAST = 0.05  # seconds a task runs in the fake


class ManualClock:
    """The fake's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def mj() -> AsyncIterator[FakeMidjourneyProxy]:
    async with FakeMidjourneyProxy() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def adapter(mj: FakeMidjourneyProxy, http: httpx.AsyncClient, secret: str | None = SECRET,
            **options: Any) -> MidjourneyProxyProvider:
    return MidjourneyProxyProvider(mj.base_url, http=http, secret=secret, poll_interval=0.02,
                                   **options)


def job(action: str = "imagine", prompt: str = "a red fox in snow --ar 1:1", *,
        images: tuple[bytes, ...] = (), parent: str | None = None,
        aspect: tuple[int, int] = (1, 1)) -> ProviderTask:
    return ProviderTask(job_id="job1", action=action, prompt=prompt, mode="fast", seed=1,
                        aspect=aspect, version="6.1", images=images, parent_upstream_id=parent)


async def finish(provider: MidjourneyProxyProvider, *ids: str,
                 timeout: float = 10.0) -> dict[str, ProviderUpdate]:
    """Poll until every task has ended (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            updates = await provider.poll_many(list(ids))
            if len(updates) == len(ids) and all(
                    u.state is not TaskState.RUNNING for u in updates.values()):
                return updates
            await asyncio.sleep(provider.poll_interval)


async def run(provider: MidjourneyProxyProvider, task: ProviderTask) -> tuple[str, ProviderUpdate]:
    upstream_id = await provider.submit(task)
    update = (await finish(provider, upstream_id))[upstream_id]
    assert update.state is TaskState.SUCCESS, update.message
    return upstream_id, update


async def download(http: httpx.AsyncClient, url: str | None) -> Image.Image:
    assert url
    response = await http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    return imaging.decode_image(response.content, "result")


def png(size: tuple[int, int], colour: str) -> bytes:
    return imaging.encode_png(Image.new("RGB", size, colour))


# ------------------------------------------------------------------------------ the happy path


async def test_imagine_yields_a_real_grid(mj: FakeMidjourneyProxy,
                                          http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=0.3)  # long enough to be seen running
    provider = adapter(mj, http)

    upstream_id = await provider.submit(job())
    first = (await provider.poll_many([upstream_id]))[upstream_id]
    assert first.state is TaskState.RUNNING and 0 <= first.progress < 100
    update = (await finish(provider, upstream_id))[upstream_id]

    assert update.state is TaskState.SUCCESS and update.progress == 100
    grid = await download(http, update.image_url)
    assert grid.size == (256, 256)  # 2x2 tiles of 512 px at the fake's scale 0.25
    tiles = imaging.split_grid(grid)
    assert all(ImageChops.difference(tiles[0], t).getbbox() for t in tiles[1:])
    # the slot's speed goes in the prompt (Midjourney reads it there) and the filter
    assert account.submissions == [("/mj/submit/imagine",
                                    {"prompt": "a red fox in snow --ar 1:1 --fast",
                                     "accountFilter": {"modes": ["FAST"]}})]
    assert all(secret == SECRET for method, path, secret in mj.requests
               if not path.startswith("/mj/image/"))


async def test_imagine_sends_reference_images_as_data_urls(mj: FakeMidjourneyProxy,
                                                           http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    await run(adapter(mj, http), job(images=(png((64, 64), "red"),)))
    path, body = account.submissions[0]
    assert body["base64Array"][0].startswith("<")  # recorded as a size, never the bytes
    assert account.tasks[next(iter(account.tasks))].inputs[0].size == (64, 64)


async def test_upsample_presses_the_parents_button(mj: FakeMidjourneyProxy,
                                                    http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    parent_id, parent = await run(provider, job())

    _, update = await run(provider, job("upsample2", parent=parent_id))

    path, body = account.submissions[-1]
    assert path == "/mj/submit/action" and body["taskId"] == parent_id
    assert body["customId"].startswith("MJ::JOB::upsample::2::")
    grid = await download(http, parent.image_url)
    single = await download(http, update.image_url)
    expected = imaging.upscale_quadrant(grid, 2)
    assert single.size == expected.size
    assert ImageChops.difference(single, expected).getbbox() is None


async def test_upscale_then_redo_upscale(mj: FakeMidjourneyProxy,
                                         http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    grid_id, _ = await run(provider, job())
    single_id, single = await run(provider, job("upsample1", parent=grid_id))
    upscaled_id, upscaled = await run(provider, job("upscale2", parent=single_id))
    _, redone = await run(provider, job("redo_upscale2", parent=upscaled_id))

    small = await download(http, single.image_url)
    big = await download(http, upscaled.image_url)
    assert big.size == (2 * small.width, 2 * small.height)
    assert (await download(http, redone.image_url)).size == (2 * big.width, 2 * big.height)


async def test_an_action_the_parent_has_no_button_for_is_the_jobs_fault(
        mj: FakeMidjourneyProxy, http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    grid_id, _ = await run(provider, job())

    with pytest.raises(ProviderError) as caught:
        await provider.submit(job("upscale_subtle", parent=grid_id))

    assert caught.value.kind is FailureKind.JOB
    # the upstream's limit, not the user's prompt: never an illegal-prompt count
    assert str(caught.value) == ("[Unsupported action] the upstream offers no upscale_subtle "
                                 "on this task")
    assert not is_illegal_prompt_failure(str(caught.value))


async def test_inpaint_confirms_the_modal_with_the_mask(mj: FakeMidjourneyProxy,
                                                        http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    grid_id, _ = await run(provider, job())
    single_id, single = await run(provider, job("upsample1", parent=grid_id))
    size = (await download(http, single.image_url)).size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((10, 10, size[0] // 2, size[1] // 2), fill=255)

    inpaint_id, update = await run(provider, job(
        "inpaint", "a blue hat", images=(imaging.encode_png(mask),), parent=single_id))

    (action_path, action), (modal_path, modal) = account.submissions[-2:]
    assert action_path == "/mj/submit/action" and action["customId"].startswith("MJ::Inpaint::")
    assert modal_path == "/mj/submit/modal" and modal["taskId"] == inpaint_id
    assert modal["prompt"] == "a blue hat" and modal["maskBase64"].startswith("<")
    result = await download(http, update.image_url)
    assert len(imaging.split_grid(result)) == 4


async def test_describe_answers_four_prompts(mj: FakeMidjourneyProxy,
                                             http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=FAST)
    picture = png((160, 90), "orange")

    _, update = await run(adapter(mj, http), job("describe", "", images=(picture,)))

    assert update.image_url is None
    assert list(update.prompts) == imaging.describe(imaging.decode_image(picture, "in"))
    assert len(update.prompts) == 4 and not any(p[0].isdigit() for p in update.prompts)


async def test_seed_comes_from_image_seed(mj: FakeMidjourneyProxy,
                                          http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    grid_id, _ = await run(provider, job(prompt="a lighthouse --seed 4242"))
    submitted = len(account.submissions)

    seed_id, update = await run(provider, job("seed", parent=grid_id))

    assert seed_id == f"seed:{grid_id}"
    assert update.seed == "4242"
    assert len(account.submissions) == submitted  # no upstream task for a seed
    assert ("GET", f"/mj/task/{grid_id}/image-seed") in account.requests


async def test_blend_picks_dimensions_from_the_aspect(mj: FakeMidjourneyProxy,
                                                      http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    images = (png((80, 80), "red"), png((80, 80), "navy"))

    _, update = await run(adapter(mj, http), job("blend", "", images=images, aspect=(16, 9)))

    assert account.submissions[0][1]["dimensions"] == "LANDSCAPE"
    result = await download(http, update.image_url)
    assert result.width > result.height


# ------------------------------------------------------------------------------------ polling


async def test_bulk_polling_is_one_request_per_hundred_tasks(mj: FakeMidjourneyProxy,
                                                             http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, core_size=20, queue_size=120, duration=60)
    provider = adapter(mj, http)
    ids = [await provider.submit(job(prompt=f"castle {n}")) for n in range(20)]

    updates = await provider.poll_many(ids)
    assert account.list_calls == 1
    assert set(updates) == set(ids)
    assert all(u.state is TaskState.RUNNING for u in updates.values())
    await provider.poll_many(ids)
    assert account.list_calls == 2

    ids += [await provider.submit(job(prompt=f"tower {n}")) for n in range(100)]
    updates = await provider.poll_many(ids)
    assert account.list_calls == 4  # 120 ids: chunks of 100 and 20
    assert set(updates) == set(ids)
    assert account.max_running == 20


async def test_lost_tasks_are_left_out(mj: FakeMidjourneyProxy,
                                       http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=60)
    provider = adapter(mj, http)
    kept = await provider.submit(job())
    assert set(await provider.poll_many([kept, "1234567890"])) == {kept}

    account.lose_tasks()
    assert await provider.poll_many([kept]) == {}
    assert await provider.poll_many([f"seed:{kept}"]) == {}


async def test_failed_task_carries_the_reason(mj: FakeMidjourneyProxy,
                                              http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    account.fail_tasks("the reference image could not be fetched")
    provider = adapter(mj, http)
    upstream_id = await provider.submit(job())

    update = (await finish(provider, upstream_id))[upstream_id]

    assert update.state is TaskState.FAILED
    assert update.message == "[Upstream failed] the reference image could not be fetched"
    assert failure_kind(update.message) is None


async def test_a_ban_fails_running_tasks_as_account_level(mj: FakeMidjourneyProxy,
                                                          http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=60)
    provider = adapter(mj, http)
    upstream_id = await provider.submit(job())

    account.ban()
    update = (await provider.poll_many([upstream_id]))[upstream_id]

    assert update.state is TaskState.FAILED
    assert update.message == f"{ACCOUNT_PREFIX}Account banned"
    assert failure_kind(update.message) is FailureKind.BANNED


async def test_cancel_stops_a_running_task(mj: FakeMidjourneyProxy,
                                           http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=60)
    provider = adapter(mj, http)
    upstream_id = await provider.submit(job())

    await provider.cancel(upstream_id)
    await provider.cancel("999")  # unknown: best effort, no error
    await provider.forget(upstream_id)

    update = (await provider.poll_many([upstream_id]))[upstream_id]
    assert update.state is TaskState.FAILED
    assert update.message == "[Cancelled] the upstream cancelled the task"


# ------------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(("failure", "kind"), [
    ("unavailable", FailureKind.UNAVAILABLE),
    ("drop", FailureKind.UNAVAILABLE),
    ("malformed", FailureKind.UNAVAILABLE),
    ("queue_full", FailureKind.QUEUE_FULL),
    ("auth", FailureKind.AUTH),
])
async def test_submit_failures_map_to_their_kind(mj: FakeMidjourneyProxy,
                                                 http: httpx.AsyncClient, failure: str,
                                                 kind: FailureKind) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    account.fail_next(failure)
    provider = adapter(mj, http)

    with pytest.raises(ProviderError) as caught:
        await provider.submit(job())

    assert caught.value.kind is kind
    assert str(caught.value).startswith("[")
    assert caught.value.retry_after is None
    await run(provider, job())  # the next submit goes through


async def test_rate_limited_carries_retry_after(mj: FakeMidjourneyProxy,
                                                http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET)
    account.fail_next("rate_limited", times=2, retry_after=7)
    provider = adapter(mj, http)

    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await provider.submit(job())
        assert caught.value.kind is FailureKind.RATE_LIMITED
        assert caught.value.retry_after == 7.0


# both proxies answer "no instance" (code 3, 无可用的账号实例) whatever the reason; the
# adapter then reads the reason from /mj/account/list
@pytest.mark.parametrize(("switch", "kind", "words"), [
    ("ban", FailureKind.BANNED, "banned"),
    ("captcha", FailureKind.CAPTCHA, "CAPTCHA"),
    ("moderate", FailureKind.MODERATION, "moderation"),
    ("expire_token", FailureKind.AUTH, "secret"),
])
async def test_account_states_refuse_submits(mj: FakeMidjourneyProxy, http: httpx.AsyncClient,
                                             switch: str, kind: FailureKind,
                                             words: str) -> None:
    account = mj.add_account(SECRET)
    getattr(account, switch)()

    with pytest.raises(ProviderError) as caught:
        await adapter(mj, http).submit(job())

    assert caught.value.kind is kind
    assert words in str(caught.value)
    assert caught.value.kind.account_level


async def test_banned_prompt_is_the_jobs_fault(http: httpx.AsyncClient) -> None:
    """novicezk refuses at submit with code 24 (SubmitController.java)."""
    async with FakeMidjourneyProxy(flavor=NOVICEZK) as mj:
        mj.add_account(SECRET)
        with pytest.raises(ProviderError) as caught:
            await adapter(mj, http).submit(job(prompt="a forbiddenword at dawn"))

    assert caught.value.kind is FailureKind.JOB and not caught.value.retryable
    assert str(caught.value).startswith("[Banned prompt detected]")
    assert "forbiddenword" in str(caught.value)
    assert is_illegal_prompt_failure(str(caught.value))


async def test_trueai_fails_a_banned_prompt_after_the_submit(mj: FakeMidjourneyProxy,
                                                              http: httpx.AsyncClient) -> None:
    """trueai-org takes the submit and fails the task with 可能包含敏感词 (DiscordService.cs):
    a prompt-caused failure, counted, prefixed once."""
    mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    upstream_id = await provider.submit(job(prompt="a forbiddenword at dawn"))

    update = (await finish(provider, upstream_id))[upstream_id]

    assert update.state is TaskState.FAILED and update.kind is FailureKind.JOB
    assert update.message == "[Banned prompt detected] 可能包含敏感词"
    assert is_illegal_prompt_failure(update.message)


async def test_unknown_secret_and_wrong_instance(mj: FakeMidjourneyProxy,
                                                 http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, instance_id="alpha", duration=FAST)
    with pytest.raises(ProviderError) as caught:
        await adapter(mj, http, secret="nope").submit(job())
    assert caught.value.kind is FailureKind.AUTH
    with pytest.raises(ProviderError) as caught:
        await adapter(mj, http, secret=None).probe()
    assert caught.value.kind is FailureKind.AUTH

    with pytest.raises(ProviderError) as caught:
        await adapter(mj, http, instance_id="beta").submit(job())
    assert caught.value.kind is FailureKind.UNAVAILABLE
    await run(adapter(mj, http, instance_id="alpha"), job())
    assert account.submissions[-1][1]["accountFilter"] == {"instanceId": "alpha",
                                                          "modes": ["FAST"]}


async def test_unreachable_and_silent_upstreams_are_unavailable(http: httpx.AsyncClient) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = MidjourneyProxyProvider(f"http://127.0.0.1:{port}", http=http, secret=SECRET,
                                     timeout=0.2)
    with pytest.raises(ProviderError) as caught:
        await silent.poll_many(["1"])
    assert caught.value.kind is FailureKind.UNAVAILABLE
    server.close()
    await server.wait_closed()

    gone = MidjourneyProxyProvider(f"http://127.0.0.1:{port}", http=http, secret=SECRET)
    with pytest.raises(ProviderError) as caught:
        await gone.probe()
    assert caught.value.kind is FailureKind.UNAVAILABLE


async def test_a_tagged_task_is_found_again(mj: FakeMidjourneyProxy,
                                            http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    tagged = ProviderTask(job_id="job1", action="imagine", prompt="a tagged owl", mode="fast",
                          seed=1, aspect=(1, 1), version="7", tag="job1.1")
    upstream_id = await provider.submit(tagged)
    assert account.submissions[-1][1]["state"] == "job1.1"
    await provider.submit(job())  # untagged: no state sent
    assert "state" not in account.submissions[-1][1]
    assert await provider.find("job1.1") == upstream_id
    assert await provider.find("job1.2") is None
    # the answer is lost after the upstream took the task: the error says so, and the
    # task is there to be found
    account.fail_next("accept_drop")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(ProviderTask(**{**_fields(tagged), "tag": "job1.2"}))
    assert caught.value.uncertain and caught.value.retryable
    found = await provider.find("job1.2")
    assert found is not None and account.tasks[found].state == "job1.2"
    # a refusal is certain: nothing was started
    account.fail_next("queue_full")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(ProviderTask(**{**_fields(tagged), "tag": "job1.3"}))
    assert not caught.value.uncertain
    assert await provider.find("job1.3") is None


async def test_a_found_task_waiting_for_its_modal_is_confirmed(
        mj: FakeMidjourneyProxy, http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    grid_id, _ = await run(provider, job())
    single_id, single = await run(provider, job("upsample1", parent=grid_id))
    mask = Image.new("L", (await download(http, single.image_url)).size, 0)
    inpaint = ProviderTask(**{**_fields(job("inpaint", "a blue hat",
                                            images=(imaging.encode_png(mask),),
                                            parent=single_id)), "tag": "job1.1"})
    # the upstream takes the button press, the answer is lost: no modal was confirmed
    account.fail_next("accept_drop")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(inpaint)
    assert caught.value.uncertain
    waiting = [t for t in account.tasks.values() if t.state == "job1.1"]
    assert [t.status for t in waiting] == ["MODAL"]
    # found by its tag, and confirmed with the job's prompt and mask
    assert await provider.find("job1.1", inpaint) == waiting[0].id
    modal_path, modal = account.submissions[-1]
    assert modal_path == "/mj/submit/modal" and modal["taskId"] == waiting[0].id
    update = (await finish(provider, waiting[0].id))[waiting[0].id]
    assert update.state is TaskState.SUCCESS


async def test_a_late_answer_is_uncertain_and_a_refused_connection_is_not(
        mj: FakeMidjourneyProxy, http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET, duration=FAST)
    account.fail_next("accept_late", delay=5)
    with pytest.raises(ProviderError) as caught:
        await adapter(mj, http, timeout=0.2).submit(job())
    assert caught.value.uncertain
    assert len(account.tasks) == 1
    # nobody listens there: the request never left
    closed = MidjourneyProxyProvider(f"http://127.0.0.1:{free_port()}", http=http,
                                     secret=SECRET)
    with pytest.raises(ProviderError) as caught:
        await closed.submit(job())
    assert not caught.value.uncertain


def _fields(task: ProviderTask) -> dict[str, Any]:
    return {name: getattr(task, name) for name in task.__dataclass_fields__}


async def test_fake_lists_recent_tasks_with_their_state(mj: FakeMidjourneyProxy,
                                                        http: httpx.AsyncClient) -> None:
    clock = ManualClock()
    mj.clock = clock
    mj.add_account(SECRET, core_size=200, queue_size=0, duration=FAST)
    headers = {"mj-api-secret": SECRET}
    for i in range(105):
        clock.advance(1)
        reply = await http.post(f"{mj.base_url}/mj/submit/imagine", headers=headers,
                                json={"prompt": f"a bird {i}", "state": f"tag-{i}"})
        assert reply.json()["code"] == 1
    listed = (await http.get(f"{mj.base_url}/mj/task/list", headers=headers)).json()
    # newest first, the latest 100 (trueai-org's TaskController.List)
    assert [t["state"] for t in listed] == [f"tag-{i}" for i in range(104, 4, -1)]
    too_long = await http.post(f"{mj.base_url}/mj/submit/imagine", headers=headers,
                               json={"prompt": "a bird", "state": "x" * 256})
    assert too_long.json()["code"] == 4


@pytest.mark.parametrize(("description", "kind"), [
    ("No available account instance: account banned", FailureKind.BANNED),
    ("No available account instance: CAPTCHA verification required (locked)",
     FailureKind.CAPTCHA),
    ("No available account instance: pending moderation", FailureKind.MODERATION),
    ("token expired", FailureKind.AUTH),
    ("No available account instance", FailureKind.UNAVAILABLE),
    ("Banned prompt: gore", FailureKind.JOB),
    ("Invalid link", FailureKind.JOB),
])
def test_classify(description: str, kind: FailureKind) -> None:
    assert classify(description) is kind


# -------------------------------------------------------------------------------------- probe


async def test_probe_follows_the_account(mj: FakeMidjourneyProxy,
                                         http: httpx.AsyncClient) -> None:
    account = mj.add_account(SECRET)
    provider = adapter(mj, http)
    await provider.probe()

    async def kind() -> FailureKind:
        with pytest.raises(ProviderError) as caught:
            await provider.probe()
        return caught.value.kind

    account.captcha()
    assert await kind() is FailureKind.CAPTCHA
    account.solve()
    await provider.probe()

    account.moderate()
    assert await kind() is FailureKind.MODERATION
    account.release()

    account.expire_token()
    assert await kind() is FailureKind.AUTH
    account.renew_token()
    await provider.probe()

    account.ban()
    assert await kind() is FailureKind.BANNED
    account.unban()
    await provider.probe()


async def test_the_secret_never_leaks(mj: FakeMidjourneyProxy, http: httpx.AsyncClient,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = mj.add_account(SECRET, duration=FAST)
    provider = adapter(mj, http)
    messages = [repr(provider), repr(account)]
    for failure in ("auth", "drop", "malformed", "unavailable", "rate_limited"):
        account.fail_next(failure)
        with pytest.raises(ProviderError) as caught:
            await provider.submit(job())
        messages.append(str(caught.value))
    account.ban()
    for call in (provider.submit(job()), provider.probe()):
        with pytest.raises(ProviderError) as caught:
            await call
        messages.append(str(caught.value))
    wrong = adapter(mj, http, secret=OTHER)
    with pytest.raises(ProviderError) as caught:
        await wrong.probe()
    messages.append(str(caught.value))

    assert caplog.records  # httpx logged its requests
    for text in [*messages, caplog.text]:
        assert SECRET not in text and OTHER not in text


# -------------------------------------------------------------- the fake's protocol, directly


async def submit_raw(http: httpx.AsyncClient, mj: FakeMidjourneyProxy, prompt: str,
                     secret: str = SECRET) -> dict[str, Any]:
    response = await http.post(f"{mj.base_url}/mj/submit/imagine", json={"prompt": prompt},
                               headers={"mj-api-secret": secret})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_fake_queues_then_refuses() -> None:
    clock = ManualClock()
    async with FakeMidjourneyProxy(clock=clock) as mj, httpx.AsyncClient() as http:
        account = mj.add_account(SECRET, core_size=1, queue_size=1, duration=10)
        first = await submit_raw(http, mj, "one")
        second = await submit_raw(http, mj, "two")
        third = await submit_raw(http, mj, "three")

        assert first["code"] == 1 and first["result"]
        assert second["code"] == 22
        assert second["description"] == "In queue, there are 0 tasks ahead"
        # trueai-org: code 9 (DiscordService.cs), not 23
        assert third == {"code": 9, "description": "提交失败，队列已满，请稍后重试",
                         "result": None, "properties": {}}
        assert account.rejected_full == 1 and account.max_running == 1

        async def status(task_id: str) -> str:
            response = await http.get(f"{mj.base_url}/mj/task/{task_id}/fetch",
                                      headers={"mj-api-secret": SECRET})
            return str(response.json()["status"])

        assert await status(second["result"]) == "NOT_START"
        clock.advance(10)
        assert await status(first["result"]) == "SUCCESS"
        assert await status(second["result"]) == "SUBMITTED"
        clock.advance(5)
        assert await status(second["result"]) == "IN_PROGRESS"
        clock.advance(5)
        assert await status(second["result"]) == "SUCCESS"
        assert account.max_running == 1


async def test_fake_never_runs_more_than_core_size() -> None:
    clock = ManualClock()
    async with FakeMidjourneyProxy(clock=clock) as mj, httpx.AsyncClient() as http:
        account = mj.add_account(SECRET, core_size=3, queue_size=10, duration=1)
        ids = [(await submit_raw(http, mj, f"prompt {n}"))["result"] for n in range(9)]
        headers = {"mj-api-secret": SECRET}
        for _ in range(4):
            response = await http.post(f"{mj.base_url}/mj/task/list-by-condition",
                                       json={"ids": ids}, headers=headers)
            running = [t for t in response.json()
                       if t["status"] in ("SUBMITTED", "IN_PROGRESS")]
            assert len(running) <= 3
            clock.advance(1)
        statuses = {t["status"] for t in response.json()}
        assert statuses == {"SUCCESS"}
        assert account.max_running == 3
        assert account.list_calls == 4


async def test_fake_auth_and_isolation(mj: FakeMidjourneyProxy,
                                       http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=60)
    mj.add_account(OTHER, duration=60)
    task_id = (await submit_raw(http, mj, "mine"))["result"]

    anonymous = await http.get(f"{mj.base_url}/mj/account/list")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"code": 401, "description": "unauthorized"}
    other = await http.get(f"{mj.base_url}/mj/task/{task_id}/fetch",
                           headers={"mj-api-secret": OTHER})
    assert other.status_code == 204 and other.content == b""  # trueai-org: a null result
    listed = await http.post(f"{mj.base_url}/mj/task/list-by-condition",
                             json={"ids": [task_id]}, headers={"mj-api-secret": OTHER})
    assert listed.json() == []
    assert ("GET", "/mj/account/list", None) in mj.requests
    banned = await submit_raw(http, mj, "a FORBIDDENWORD here")
    assert banned["code"] == 1  # trueai-org fails it later


async def test_fake_buttons_follow_the_result_kind(mj: FakeMidjourneyProxy,
                                                   http: httpx.AsyncClient) -> None:
    mj.add_account(SECRET, duration=0)
    headers = {"mj-api-secret": SECRET}
    grid_id = (await submit_raw(http, mj, "buttons"))["result"]
    grid = (await http.get(f"{mj.base_url}/mj/task/{grid_id}/fetch", headers=headers)).json()
    ids = [b["customId"] for b in grid["buttons"]]
    assert [i.split("::")[2] for i in ids] == ["upsample"] * 4 + ["reroll"] + ["variation"] * 4
    assert grid["imageUrl"] == f"{mj.base_url}/mj/image/{grid_id}.png"

    pressed = await http.post(f"{mj.base_url}/mj/submit/action", headers=headers,
                              json={"taskId": grid_id, "customId": ids[0]})
    single_id = pressed.json()["result"]
    single = (await http.get(f"{mj.base_url}/mj/task/{single_id}/fetch",
                             headers=headers)).json()
    assert single["action"] == "UPSCALE" and single["status"] == "SUCCESS"
    labels = {b["label"] for b in single["buttons"]}
    assert {"Vary (Region)", "Zoom Out 2x", "Upscale (Subtle)"} <= labels
    assert "Make Square" not in labels  # trueai-org has no make_square action

    zoom = next(b["customId"] for b in single["buttons"] if b["label"] == "Custom Zoom")
    modal = await http.post(f"{mj.base_url}/mj/submit/action", headers=headers,
                            json={"taskId": single_id, "customId": zoom})
    assert modal.json()["code"] == 21
    waiting = modal.json()["result"]
    fetched = await http.get(f"{mj.base_url}/mj/task/{waiting}/fetch", headers=headers)
    assert fetched.json()["status"] == "MODAL"
    confirmed = await http.post(f"{mj.base_url}/mj/submit/modal", headers=headers,
                                json={"taskId": waiting, "prompt": "wider --zoom 1.5"})
    assert confirmed.json()["code"] == 1

    bad = await http.post(f"{mj.base_url}/mj/submit/action", headers=headers,
                          json={"taskId": grid_id, "customId": "MJ::JOB::nothing::1"})
    assert bad.json()["code"] == 4
    image = await http.get(f"{mj.base_url}/mj/image/{waiting}.png")
    assert Image.open(io.BytesIO(image.content)).format == "PNG"


@pytest.mark.parametrize(("prompt", "sent"), [
    ("a cat", "a cat --relax"),
    ("a cat --fast", "a cat --relax"),
    ("--FAST a cat --ar 3:2", "a cat --ar 3:2 --relax"),
    ("a --fastidious cat --turbo", "a --fastidious cat --relax"),
])
def test_the_slots_speed_replaces_any_speed_flag(prompt: str, sent: str) -> None:
    assert with_mode(prompt, "relax") == sent
