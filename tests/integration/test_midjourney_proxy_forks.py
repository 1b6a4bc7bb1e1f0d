"""The midjourney-proxy adapter against both projects of that name, as the fake plays them
(``flavor``): trueai-org's fork and novicezk's original. Each behaviour comes from the
project's source, noted in :mod:`gengate.testing.mjproxy`; each test failed against the
adapter that knew only the fake's old, mixed protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from gengate.accounts import FailureKind
from gengate.products.midjourney.prompt import is_illegal_prompt_failure
from gengate.products.midjourney.providers.midjourney_proxy import MidjourneyProxyProvider
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState
from gengate.testing.mjproxy import NOVICEZK, TRUEAI, FakeMidjourneyProxy

SECRET = "secret-forks"
#: what novicezk's /mj/submit/change can do with a grid (SubmitController.java)
U_V_REROLL = [*(f"upsample{n}" for n in range(1, 5)), *(f"variation{n}" for n in range(1, 5)),
              "reroll"]


def job(action: str = "imagine", prompt: str = "a quiet harbour", *,
        parent: str | None = None) -> ProviderTask:
    return ProviderTask(job_id="job-1", action=action, prompt=prompt, mode="fast",
                        parent_upstream_id=parent)


async def finish(provider: MidjourneyProxyProvider, upstream_id: str) -> ProviderUpdate:
    async with asyncio.timeout(20):
        while True:
            update = (await provider.poll_many([upstream_id])).get(upstream_id)
            if update is not None and update.state is not TaskState.RUNNING:
                return update
            await asyncio.sleep(0.02)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def adapter(mj: FakeMidjourneyProxy, http: httpx.AsyncClient,
            protocol: str | None = None) -> MidjourneyProxyProvider:
    if protocol is None:  # auto: told from the proxy's own tasks
        return MidjourneyProxyProvider(mj.base_url, http=http, secret=SECRET, timeout=5)
    return MidjourneyProxyProvider(mj.base_url, http=http, secret=SECRET, timeout=5,
                                   protocol=protocol)


@pytest.mark.parametrize("protocol", [None, "novicezk"])
async def test_novicezk_runs_upscale_variation_and_reroll_through_change(
        http: httpx.AsyncClient, protocol: str | None) -> None:
    async with FakeMidjourneyProxy(flavor=NOVICEZK) as mj:
        account = mj.add_account(SECRET, duration=0.02)
        provider = adapter(mj, http, protocol)
        grid_id = await provider.submit(job())
        grid = await finish(provider, grid_id)
        assert grid.state is TaskState.SUCCESS
        assert grid.data.get("actions") == U_V_REROLL  # U1-U4, V1-V4, reroll
        results = {}
        for action in ("upsample2", "variation3", "reroll"):
            child = await provider.submit(job(action, parent=grid_id))
            results[action] = await finish(provider, child)
        assert all(u.state is TaskState.SUCCESS and u.image_url for u in results.values())
        # an upscaled image takes no follow-up on novicezk's proxy
        assert results["upsample2"].data.get("actions") == []
        assert results["variation3"].data.get("actions") == U_V_REROLL
        changes = [body for path, body in account.submissions if path == "/mj/submit/change"]
        assert [(c["action"], c.get("index")) for c in changes] == [
            ("UPSCALE", 2), ("VARIATION", 3), ("REROLL", None)]
        assert not any(path == "/mj/submit/action" for path, _ in account.submissions)


async def test_novicezk_cannot_run_other_actions_nor_tell_a_seed(http: httpx.AsyncClient) -> None:
    async with FakeMidjourneyProxy(flavor=NOVICEZK) as mj:
        mj.add_account(SECRET, duration=0.02)
        provider = adapter(mj, http)
        grid_id = await provider.submit(job())
        await finish(provider, grid_id)
        single_id = await provider.submit(job("upsample1", parent=grid_id))
        await finish(provider, single_id)
        with pytest.raises(ProviderError) as caught:
            await provider.submit(job("zoom_out_2", parent=single_id))
        assert caught.value.kind is FailureKind.JOB
        assert str(caught.value).startswith("[Unsupported action]")
        assert not is_illegal_prompt_failure(str(caught.value))
        seed = await finish(provider, await provider.submit(job("seed", parent=grid_id)))
        assert seed.state is TaskState.FAILED and seed.message.startswith("[Unsupported action]")
        assert not is_illegal_prompt_failure(seed.message)


async def test_trueai_offers_only_its_buttons(http: httpx.AsyncClient) -> None:
    async with FakeMidjourneyProxy(flavor=TRUEAI) as mj:
        mj.add_account(SECRET, duration=0.02)
        provider = adapter(mj, http)
        grid_id = await provider.submit(job(prompt="a wide field --ar 3:2"))
        await finish(provider, grid_id)
        single = await finish(provider, await provider.submit(job("upsample1", parent=grid_id)))
        actions = single.data.get("actions") or []
        assert "make_square" not in actions  # trueai-org has no Make Square
        assert {"zoom_out_2", "pan_left", "upscale_subtle", "inpaint"} <= set(actions)
        seed = await finish(provider, await provider.submit(job("seed", parent=grid_id)))
        assert seed.state is TaskState.SUCCESS and seed.seed


@pytest.mark.parametrize(("flavor", "code", "kind"), [
    (TRUEAI, 9, FailureKind.QUEUE_FULL), (NOVICEZK, 23, FailureKind.QUEUE_FULL)])
async def test_a_full_queue_moves_the_job(http: httpx.AsyncClient, flavor: str, code: int,
                                          kind: FailureKind) -> None:
    async with FakeMidjourneyProxy(flavor=flavor) as mj:
        account = mj.add_account(SECRET)
        account.fail_next("queue_full")
        with pytest.raises(ProviderError) as caught:
            await adapter(mj, http).submit(job())
    assert caught.value.kind is kind and caught.value.kind.account_level
    assert account.rejected_full == 1


@pytest.mark.parametrize("flavor", [TRUEAI, NOVICEZK])
async def test_no_instance_is_the_accounts_not_the_jobs(http: httpx.AsyncClient,
                                                        flavor: str) -> None:
    async with FakeMidjourneyProxy(flavor=flavor) as mj:
        account = mj.add_account(SECRET)
        account.moderate()
        with pytest.raises(ProviderError) as caught:
            await adapter(mj, http).submit(job())
    assert caught.value.kind.account_level  # code 3 无可用的账号实例, reason from the list


@pytest.mark.parametrize("flavor", [TRUEAI, NOVICEZK])
async def test_an_unknown_task_is_not_found_not_an_outage(http: httpx.AsyncClient,
                                                          flavor: str) -> None:
    """trueai-org answers 204, novicezk 200 with an empty body: the parent is gone (the
    job's problem), and the account is fine."""
    async with FakeMidjourneyProxy(flavor=flavor) as mj:
        mj.add_account(SECRET)
        with pytest.raises(ProviderError) as caught:
            await adapter(mj, http).submit(job("upsample1", parent="1730000000999999"))
    assert caught.value.kind is FailureKind.JOB
    assert "no longer knows the parent" in str(caught.value)


@pytest.mark.parametrize(("flavor", "reason", "message", "illegal"), [
    (NOVICEZK, "[Banned prompt detected] The word `x` is not allowed",
     "[Banned prompt detected] The word `x` is not allowed", True),
    (TRUEAI, "Invalid parameter, Unrecognized parameter(s): `--foo`",
     "[Invalid parameter] Unrecognized parameter(s): `--foo`", True),
    (NOVICEZK, "[Job action restricted] this action is not available",
     "[Job action restricted] this action is not available", False),
])
async def test_midjourneys_own_failure_keeps_one_prefix(
        http: httpx.AsyncClient, flavor: str, reason: str, message: str,
        illegal: bool) -> None:
    async with FakeMidjourneyProxy(flavor=flavor) as mj:
        account = mj.add_account(SECRET, duration=0.02)
        account.fail_tasks(reason)
        provider = adapter(mj, http)
        update = await finish(provider, await provider.submit(job()))
    assert update.state is TaskState.FAILED and update.kind is FailureKind.JOB
    assert update.message == message
    assert is_illegal_prompt_failure(update.message) is illegal


async def test_novicezk_ignores_account_filter(http: httpx.AsyncClient) -> None:
    async with FakeMidjourneyProxy(flavor=NOVICEZK) as mj:
        mj.add_account(SECRET, instance_id="instance-a")
        provider = MidjourneyProxyProvider(mj.base_url, http=http, secret=SECRET,
                                           instance_id="someone-else")
        assert await provider.submit(job())  # taken anyway: novicezk has no accountFilter


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        MidjourneyProxyProvider("http://127.0.0.1:1", http=httpx.AsyncClient(),
                                protocol="v2")
