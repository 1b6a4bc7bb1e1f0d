"""The worker's providers per account (gengate.upstreams) when an account changes: new work
goes to a new provider, the old one keeps serving whoever holds it, and is closed once
nothing does. A real runtime on SQLite, an OpenAI account on the fake OpenAI Images API
(its adapter runs each request in the background: closing it drops its tasks)."""

from __future__ import annotations

from gengate.config import Settings
from gengate.providers.base import ProviderTask, TaskState
from gengate.providers.inline import InlineProvider
from gengate.runtime import Runtime
from gengate.testing.openai_images import FakeOpenAIImages

KEY = "sk-upstreams"
TASK = ProviderTask(job_id="job-1", action="generations", prompt="a red fox", mode="fast",
                    product="gpt_image", options={"model": "gpt-image-1"})


async def test_a_changed_accounts_provider_is_closed_once_nothing_holds_it(
        settings: Settings) -> None:
    async with FakeOpenAIImages(keys=(KEY,), scale=0.125) as openai:
        runtime = await Runtime.start(settings.model_copy(update={"local_account": False}))
        try:
            assert runtime.worker is not None
            upstreams = runtime.worker.upstreams
            account = await runtime.pool.create({"name": "oai", "provider": "openai",
                                                 "baseUrl": openai.base_url, "apiKey": KEY})
            async with await upstreams.hold(account["id"], "gpt_image") as (_, old, _):
                assert isinstance(old, InlineProvider)
                upstream_id = await old.submit(TASK)
                await runtime.pool.update(account["id"], {"priority": 5})
                async with await upstreams.hold(account["id"], "gpt_image") as (_, new, _):
                    assert new is not old  # new work goes to a provider of the new version
                # the old provider still serves this block: its request runs to its end
                done = await old.outcome(upstream_id)
                assert done is not None and done.state is TaskState.SUCCESS, done
                assert await old.poll_many([upstream_id]) == {upstream_id: done}
            # the last block holding it ended: closed, it knows no task any more
            assert await old.poll_many([upstream_id]) == {}
            async with await upstreams.hold(account["id"], "gpt_image") as (_, again, _):
                assert again is new
        finally:
            await runtime.close()
