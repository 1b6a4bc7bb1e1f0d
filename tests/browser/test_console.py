"""The console in a real browser: a user's first prompt to its charge in the ledger, an
operator's day (top-up, an account disabled, a webhook redelivered, an incident posted and
resolved on the status page), and the security rules (CSRF, another user's job, CSP)."""

from __future__ import annotations

import re

import pytest

try:
    from playwright.async_api import Browser, Page, expect
except ImportError as exc:  # a dev dependency; without it, skip loudly (fail under CI)
    from tests.conftest import CI

    if CI:
        raise
    pytest.skip(f"SKIPPED LOUDLY: Playwright is not installed: {exc}", allow_module_level=True)

from gengate.config import Settings
from gengate.quota import from_milli
from gengate.testing import Gateway, WebhookReceiver, serve_gateway
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _settings(settings: Settings) -> Settings:
    # the local upstream takes a moment per job, so the page shows progress before the end
    return settings.model_copy(update={
        "local_delay": 1.2, "local_steps": 4, "webhook_allow": "127.0.0.1",
        "webhook_backoff": 0.05, "webhook_timeout": 2.0})


async def _user(gw: Gateway, email: str, balance: float = 100) -> tuple[int, str]:
    user_id, key = await gw.create_user(balance=balance, email=email)
    await gw.runtime.admin.set_password(user_id, PASSWORD)
    return user_id, key


async def _sign_in(page: Page, gw: Gateway, email: str) -> None:
    await page.goto(f"{gw.base_url}/console/home")
    await expect(page).to_have_url(re.compile(r"/console/signin"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/console/home$"))


def _job_param(url: str) -> str:
    found = re.search(r"[?&]job=([0-9a-f-]+)", url)
    assert found is not None, url
    return found.group(1)


async def _finished(page: Page, timeout: float = 30_000) -> None:
    """The job page follows the job by itself and reloads when it ends."""
    await expect(page.locator("#job")).to_have_attribute("data-terminal", "yes",
                                                         timeout=timeout)


async def test_a_user_prompts_upscales_and_sees_the_charge(browser: Browser,
                                                           settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        user_id, _ = await _user(gw, "ada@example.com")
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{gw.base_url}/console/signin")
        await shot(page, "signin")
        await _sign_in(page, gw, "ada@example.com")
        await expect(page.locator("#balance")).to_have_text("100")

        await page.get_by_role("link", name="Playground").click()
        await shot(page, "playground")
        await page.get_by_label("Prompt").fill("a lighthouse at dusk, oil painting --ar 3:2")
        await page.get_by_role("button", name="Generate").click()
        await expect(page).to_have_url(re.compile(r"/console/playground\?.*job=[0-9a-f-]+"))
        job_id = _job_param(page.url)
        # live progress while it runs, then the result and its buttons, on the same page
        await expect(page.locator("#progress")).to_be_visible()
        await shot(page, "job-running")
        await _finished(page)
        await expect(page.locator("#job-status")).to_have_text("SUCCESS")
        await expect(page.locator(".results img").first).to_be_visible()
        await expect(page.get_by_label("Prompt")).to_have_value(
            "a lighthouse at dusk, oil painting --ar 3:2")
        await shot(page, "playground-done")
        await page.get_by_role("link", name="Job details").click()
        await expect(page.locator(".results img").first).to_be_visible()
        await shot(page, "job-done")

        # where the event stream cannot be had, the page polls instead
        await page.route("**/events", lambda route: route.abort())
        await page.locator("button[data-action=upsample1]").click()
        await expect(page).to_have_url(re.compile(r"/console/jobs/[0-9a-f-]+"))
        upscale_id = page.url.split("/console/jobs/")[1].split("?")[0]
        assert upscale_id != job_id
        await expect(page.locator("#job")).to_have_attribute("data-live", "polling")
        await _finished(page)
        await page.unroute("**/events")
        await expect(page.locator("#job-status")).to_have_text("SUCCESS")
        await expect(page.get_by_role("link", name=re.compile("imagine job"))).to_be_visible()

        await page.get_by_role("link", name="Jobs").click()
        await expect(page.locator("article.job")).to_have_count(2)
        await shot(page, "jobs")

        await page.get_by_role("link", name="Home").click()
        user = await gw.runtime.admin.get(user_id)
        jobs = [await gw.runtime.jobs.fetch(user_id, j) for j in (job_id, upscale_id)]
        spent = sum(from_milli(int(j.quota)) for j in jobs)
        assert user["balance"] == 100 - spent and spent > 0
        await expect(page.locator("#balance")).to_have_text(f"{user['balance']:g}")
        settled = page.locator("table.ledger tr.kind-settle")
        await expect(settled).to_have_count(2)
        await expect(settled.first).to_contain_text(upscale_id[:8])
        await expect(page.locator("svg.chart rect[height]").last).to_be_visible()
        await expect(page.get_by_text("Midjourney:")).to_contain_text(f"{spent:g}")
        await shot(page, "home")

        await page.get_by_role("link", name="Keys").click()
        await page.get_by_label("Name").fill("website")
        await page.get_by_role("button", name="Create key").click()
        secret = await page.locator("#new-key").text_content()
        assert secret and secret.startswith("gg-")
        await shot(page, "keys")
        await page.get_by_role("link", name="Keys").click()  # shown once
        await expect(page.locator("tbody tr")).to_have_count(2)
        await expect(page.locator("#new-key")).to_have_count(0)
        await page.get_by_role("link", name="Webhooks").click()
        secret = await gw.runtime.hooks.secret(user_id)
        await expect(page.locator("#hook-secret")).to_have_text(secret)
        page.on("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Rotate").click()
        await expect(page.locator(".notice.ok")).to_have_text("New signing secret")
        rotated = await gw.runtime.hooks.secret(user_id)
        assert rotated != secret
        await expect(page.locator("#hook-secret")).to_have_text(rotated)
        await shot(page, "webhooks")


async def test_an_operator_runs_the_gateway(browser: Browser, settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(_settings(settings)) as gw:
        user_id, key = await _user(gw, "bob@example.com", balance=10)
        client = gw.client(key)
        made = await client.post("/midjourney/v1/imagine",
                                 json={"prompt": "a fox", "hookUrl": receiver.url})
        job_id = made.json()["data"]["jobId"]
        await gw.wait(client, job_id)
        first = await receiver.next()

        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())
        await page.goto(f"{gw.base_url}/console/signin?method=admin")
        await page.get_by_label("Admin key").fill(gw.admin_key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/console/op/users$"))

        row = page.locator(f"#user-{user_id}")
        await row.get_by_label("Amount").fill("25")
        await row.get_by_role("button", name="Top up").click()
        await expect(page.locator(".notice.ok")).to_contain_text("balance is now")
        await expect(page.locator(f"#user-{user_id} .balance")).to_have_text(
            f"{10 + 25 - from_milli(int((await gw.runtime.jobs.fetch(user_id, job_id)).quota)):g}")
        await shot(page, "op-users")

        await page.get_by_role("link", name="Accounts").click()
        local = page.locator("tr", has_text="local")
        await local.get_by_role("button", name="Disable").click()
        await expect(page.locator(".notice.ok")).to_contain_text("disabled")
        await expect(local.locator(".tag")).to_have_text("disabled")
        assert [a["enabled"] for a in await gw.runtime.pool.list()] == [False]
        await shot(page, "op-accounts-disabled")

        await page.get_by_role("link", name="Jobs").click()
        await expect(page.locator("table.opjobs img.inline-thumb")).to_have_count(1)
        await page.get_by_label("User id").fill(str(user_id + 1))
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_text("No jobs match.")).to_be_visible()
        await page.get_by_label("User id").fill(str(user_id))
        await page.get_by_role("button", name="Filter").click()
        await shot(page, "op-jobs")

        await page.get_by_role("link", name="Webhooks").click()
        await expect(page.locator("td .tag.delivered")).to_have_count(1)
        await page.get_by_role("button", name="Redeliver").click()
        await expect(page.locator(".notice.ok")).to_contain_text("queued again")
        again = await receiver.next()
        assert again.headers["webhook-id"] == first.headers["webhook-id"]
        assert again.body == first.body
        await shot(page, "op-webhooks")

        await page.get_by_role("link", name="Incidents").click()
        await page.get_by_label("Title").fill("Slow Midjourney jobs")
        await page.get_by_label("midjourney").check()
        await page.get_by_label("Message").fill("Jobs take twice as long; we are looking.")
        await page.get_by_role("button", name="Post on the status page").click()
        await expect(page.locator(".notice.ok")).to_contain_text("Posted")
        await page.goto(f"{gw.base_url}/status")
        await expect(page.locator(".banner")).to_contain_text("1 ongoing event")
        await expect(page.locator(".incident")).to_contain_text("Slow Midjourney jobs")
        await expect(page.locator(".incident .tag")).to_have_text("investigating")
        await shot(page, "status-incident")

        await page.goto(f"{gw.base_url}/console/op/incidents")
        await page.get_by_label("New state").select_option("resolved")
        await page.get_by_label("Update").fill("Back to normal speed.")
        await page.get_by_role("button", name="Post update").click()
        await shot(page, "op-incidents")
        await page.goto(f"{gw.base_url}/status")
        await expect(page.locator(".incident .tag")).to_have_text("resolved")
        await expect(page.locator(".incident .updates li")).to_have_count(2)
        await expect(page.locator(".banner")).not_to_contain_text("ongoing")
        # the history shows today's real traffic
        await expect(page.locator(".product svg.chart rect.good").first).to_be_attached()
        await shot(page, "status")
        status = (await gw.http.get("/status.json")).json()
        assert status["incidents"][0]["state"] == "resolved"
        assert [u["state"] for u in status["incidents"][0]["updates"]] == [
            "resolved", "investigating"]
        today = status["history"]["midjourney"][-1]
        assert len(status["history"]["midjourney"]) == 90
        assert today["finished"] == 1 and today["availability"] == 1.0


async def test_csrf_other_users_jobs_and_csp(browser: Browser, settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        owner, owner_key = await _user(gw, "owner@example.com")
        await _user(gw, "other@example.com")
        client = gw.client(owner_key)
        made = await client.post("/midjourney/v1/imagine", json={"prompt": "a private cat"})
        job_id = made.json()["data"]["jobId"]
        await gw.wait(client, job_id)

        page = await browser.new_page()
        await _sign_in(page, gw, "other@example.com")
        answer = await page.goto(f"{gw.base_url}/console/jobs/{job_id}")
        assert answer is not None and answer.status == 404
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        await expect(page.locator("body")).not_to_contain_text("a private cat")
        await shot(page, "not-found")
        progress = await page.request.get(f"{gw.base_url}/console/jobs/{job_id}/progress")
        assert progress.status == 404
        # an action on someone else's job: 404 as well, and nothing is charged
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        acted = await page.request.post(f"{gw.base_url}/console/jobs/{job_id}/action",
                                        form={"csrf": csrf or "", "action": "upsample1"},
                                        max_redirects=0)
        assert acted.status == 404

        # a form without the session's token is refused, and nothing is submitted
        forged = await page.request.post(f"{gw.base_url}/console/playground",
                                         form={"csrf": "forged", "prompt": "a dog"})
        assert forged.status == 403
        listed = await gw.runtime.store.all_jobs(None, None, None, 10)
        assert [j.id for j in listed] == [job_id]

        answer = await page.goto(f"{gw.base_url}/console/home")
        assert answer is not None
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        status_page = await page.goto(f"{gw.base_url}/status")
        assert status_page is not None and "content-security-policy" in status_page.headers
        cookies = await page.context.cookies()
        session = [c for c in cookies if c["name"] == "gg_console"][0]
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        # signing out ends the session
        await page.goto(f"{gw.base_url}/console/home")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(re.compile(r"/console/signin"))
        answer = await page.goto(f"{gw.base_url}/console/home")
        assert answer is not None and "/console/signin" in answer.url




PLAY_FIRST = """async (el) => {
  el.muted = true;
  if (el.readyState < 1) {
    await new Promise((resolve, reject) => {
      el.addEventListener('loadedmetadata', resolve, {once: true});
      el.addEventListener('error', () => reject(new Error('media error')), {once: true});
      el.load();
    });
  }
  await el.play();
  while (el.currentTime < 0.2) {
    await new Promise((resolve) => el.addEventListener('timeupdate', resolve, {once: true}));
  }
  el.pause();
  return {duration: el.duration, played: el.currentTime};
}"""


async def test_the_playground_makes_a_picture_songs_and_a_video(browser: Browser,
                                                               settings: Settings) -> None:
    slow = _settings(settings).model_copy(update={"local_delay": 3.0, "local_steps": 6,
                                                  "local_scale": 0.1})
    async with serve_gateway(slow) as gw:
        user_id, key = await _user(gw, "cleo@example.com")
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events")
                else None)
        await _sign_in(page, gw, "cleo@example.com")
        await page.get_by_role("link", name="Playground").click()
        await page.get_by_role("link", name="Flux").click()
        await expect(page.get_by_role("heading", name="Flux")).to_be_visible()
        await page.get_by_label("Prompt").fill("a paper boat on a pond")
        await page.get_by_label("Model").select_option("flux1-pro")
        await page.get_by_label("Aspect ratio").select_option("16:9")
        await shot(page, "playground-flux")
        await page.get_by_role("button", name="Generate").click()
        await expect(page).to_have_url(re.compile(r"product=flux.*job="))
        flux_id = _job_param(page.url)
        # progress arrives as server-sent events while the job runs
        card = page.locator("#job")
        await expect(card).to_have_attribute("data-live", "events")
        await expect(card).to_have_attribute("data-progress", re.compile(r"^[1-9][0-9]?$"),
                                             timeout=20_000)
        await shot(page, "playground-flux-running")
        await _finished(page)
        assert any(url.endswith(f"/console/jobs/{flux_id}/events") for url in streams)
        image = page.locator(".result .results img")
        await expect(image).to_have_count(1)
        assert await image.evaluate("img => img.complete && img.naturalWidth") > 0
        job = await gw.runtime.jobs.fetch(user_id, flux_id)
        assert job.product == "flux" and job.params["model"] == "flux1-pro"
        await expect(page.get_by_label("Model")).to_have_value("flux1-pro")
        await shot(page, "playground-flux-done")

        await page.get_by_role("link", name="Suno").click()
        await page.get_by_label("What the song is about").fill("a slow song about the sea")
        await page.get_by_role("button", name="Generate").click()
        await expect(page).to_have_url(re.compile(r"product=suno.*job="))
        suno_id = _job_param(page.url)
        await _finished(page, 120_000)  # two songs and their videos, rendered here
        songs = page.locator(".result audio")
        await expect(songs).to_have_count(2)
        played = await songs.first.evaluate(PLAY_FIRST)
        assert played["duration"] > 1 and played["played"] >= 0.2
        await shot(page, "playground-suno")

        # a video made over the API plays on the jobs page and on its own page
        client = gw.client(key)
        made = await client.post("/gemini/video/generations", json={
            "prompt": "waves on a beach", "aspect_ratio": "16:9"})
        video_id = made.json()["data"]["jobId"]
        await page.goto(f"{gw.base_url}/console/jobs/{video_id}")
        await _finished(page, 120_000)
        video = page.locator(".player video")
        await expect(video).to_have_count(1)
        played = await video.evaluate(PLAY_FIRST)
        assert played["duration"] > 1
        await shot(page, "job-video")
        await page.get_by_role("link", name="Jobs").click()
        cards = page.locator("article.job")
        await expect(cards).to_have_count(3)
        await expect(page.locator("article.job video")).to_have_count(1)
        await expect(page.locator("article.job audio")).to_have_count(2)
        await expect(page.locator("article.job img")).to_have_count(2)  # flux, suno's cover
        await shot(page, "jobs-media")
        assert suno_id != flux_id
        # the operator's jobs page plays them too
        operator = await browser.new_page(viewport={"width": 1280, "height": 900})
        await operator.goto(f"{gw.base_url}/console/signin?method=admin")
        await operator.get_by_label("Admin key").fill(gw.admin_key)
        await operator.get_by_role("button", name="Sign in").click()
        await operator.get_by_role("link", name="Jobs").click()
        await expect(operator.locator("table.opjobs video")).to_have_count(1)
        await expect(operator.locator("table.opjobs audio")).to_have_count(2)
        await expect(operator.locator("table.opjobs img.inline-thumb")).to_have_count(1)
        await shot(operator, "op-jobs-media")


async def test_an_operator_checks_an_account_edits_a_price_and_revokes_a_key(
        browser: Browser, settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        user_id, key = await _user(gw, "dan@example.com", balance=50)
        client = gw.client(key)
        made = await client.post("/midjourney/v1/imagine", json={"prompt": "a fox"})
        await gw.wait(client, made.json()["data"]["jobId"])

        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())
        await page.goto(f"{gw.base_url}/console/signin?method=admin")
        await page.get_by_label("Admin key").fill(gw.admin_key)
        await page.get_by_role("button", name="Sign in").click()

        # check now: the same health check the background pass runs
        await page.get_by_role("link", name="Accounts").click()
        # by keyboard alone
        await page.get_by_role("button", name="Check now local").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(".notice.ok")).to_have_text(
            "Account local answered its check: healthy")
        await shot(page, "op-accounts")

        # a price edited in place applies to the next job
        await page.get_by_role("link", name="Prices").click()
        await page.locator("#main-flux > summary").focus()
        await page.keyboard.press("Enter")  # opens the product's prices
        price = page.get_by_label("Price of flux:generate:flux1-dev (main)")
        await expect(price).to_have_value("1")
        await price.fill("2.5")
        await page.get_by_role("button", name="Save flux:generate:flux1-dev").first.click()
        await expect(page.locator(".notice.ok")).to_contain_text("costs 2.5 now")
        row = page.locator("#main-flux tr[data-key='flux:generate:flux1-dev']")
        await expect(row.locator(".tag")).to_have_text("operator")
        await expect(row).to_contain_text("was 1")
        await shot(page, "op-prices")
        flux = await client.post("/flux/generate", json={"prompt": "a kite",
                                                         "mode": "flux1-dev"})
        job = await gw.runtime.jobs.fetch(user_id, flux.json()["data"]["jobId"])
        assert from_milli(job.quota) == 2.5

        # the ledger across users, filtered by kind
        await page.get_by_role("link", name="Ledger").click()
        await page.get_by_label("Kind").select_option("settle")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("table.ledger tbody tr")).to_have_count(1)
        await expect(page.locator("table.ledger")).to_contain_text("dan@example.com")
        await shot(page, "op-ledger")

        # a user's key: limits, then revoked; it stops working
        await page.get_by_role("link", name="Keys").click()
        await page.get_by_label("User").select_option(str(user_id))
        await page.get_by_role("button", name="Show keys").click()
        await page.get_by_text("Set limits of key").click()
        await page.get_by_label("Daily cap").fill("20")
        await page.get_by_role("button", name="Save limits").click()
        await expect(page.locator(".notice.ok")).to_contain_text("limits saved")
        await expect(page.locator("table.opkeys")).to_contain_text("day 20")
        await shot(page, "op-keys")
        await page.get_by_role("button", name=re.compile("^Revoke")).click()
        await expect(page.locator(".notice.ok")).to_contain_text("revoked")
        await expect(page.locator("table.opkeys .tag")).to_have_text("revoked")
        assert (await client.get("/midjourney/v1/info")).status_code == 401


async def test_a_user_adds_a_hosting_account_and_reads_llm_usage(browser: Browser,
                                                                settings: Settings) -> None:
    from gengate.testing import FakeMidjourneyProxy

    hosting = _settings(settings).model_copy(update={"hosting_allow": "127.0.0.1"})
    async with FakeMidjourneyProxy() as mj, serve_gateway(hosting) as gw:
        await _user(gw, "eve@example.com")
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())
        await _sign_in(page, gw, "eve@example.com")
        await page.get_by_role("link", name="Hosting").click()
        await expect(page.get_by_text("No accounts yet.")).to_be_visible()
        await page.get_by_label("Name").fill("my-mj")
        await page.get_by_label("Base URL").fill(mj.base_url)
        await page.get_by_label("Secret").fill("proxy-secret")
        await page.get_by_label("Jobs at once").fill("4")
        await page.get_by_role("button", name="Add account").click()
        await expect(page.locator(".notice.ok")).to_have_text("Account my-mj added")
        row = page.locator("tr", has_text="my-mj")
        await expect(row).to_contain_text("0/4")
        await shot(page, "hosting")
        await row.get_by_role("link", name="Edit my-mj").click()
        await page.get_by_label("Jobs at once").fill("6")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator(".notice.ok")).to_have_text("Account my-mj saved")
        await shot(page, "hosting-account")
        await page.get_by_role("button", name="Disable").click()
        await expect(page.locator(".notice.ok")).to_have_text("Account my-mj disabled")
        await expect(page.locator("tr", has_text="my-mj").locator(".tag")).to_have_text(
            "disabled")
        await page.get_by_role("link", name="LLM usage").click()
        await expect(page.get_by_text("No LLM requests yet.")).to_be_visible()
        await shot(page, "llm-usage")
