"""A user's hosting accounts and LLM usage in the console, without a browser: the pages
drive the API's own /hold/account routes (so the same checks and messages), another user's
account is 404, forms need their CSRF token, credentials never come back, and the usage page
sums what /v1/usage lists."""

from __future__ import annotations

import re

import httpx

from gengate.config import Settings
from gengate.testing import FakeAnthropic, FakeMidjourneyProxy, serve_gateway
from tests.acceptance.test_console_live import _csrf, _signed_in
from tests.acceptance.test_llm_billing import MSG, PRICE
from tests.acceptance.test_llm_relay import account, llm_settings


def _message(location: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(location).query)
    return (query.get("error") or query.get("ok") or [""])[0]


async def test_a_user_adds_edits_disables_and_deletes_an_account(settings: Settings) -> None:
    hosting = settings.model_copy(update={"hosting_allow": "127.0.0.1"})
    async with FakeMidjourneyProxy() as mj, serve_gateway(hosting) as gw, \
            httpx.AsyncClient() as http, httpx.AsyncClient() as other:
        user_id, key = await _signed_in(gw, http)
        base = f"{gw.base_url}/console/hosting"
        empty = await http.get(base)
        assert "No accounts yet." in empty.text
        csrf = await _csrf(http, base)
        form = {"csrf": csrf, "name": "my-mj", "provider": "midjourney_proxy",
                "baseUrl": mj.base_url, "secret": "proxy-secret-123", "useMode": "2",
                "maxConcurrency": "4", "protocol": "auto", "enabled": "1"}
        out = await http.post(base, data=form)
        assert _message(out.headers["location"]) == "Account my-mj added"
        listed = (await gw.client(key).get("/hold/account/list")).json()["data"]
        assert [(a["name"], a["maxConcurrency"], a["useMode"], a["hasCredentials"])
                for a in listed] == [("my-mj", 4, 2, True)]
        account_id = listed[0]["accountId"]
        page = await http.get(base)
        assert "my-mj" in page.text and "proxy-secret-123" not in page.text

        # the API's own refusals, as messages; what was typed (never the secret) kept
        for changes, message in (
                ({"useMode": "5"}, "useMode: Input should be 1, 2 or 3"),
                ({"maxConcurrency": "99"}, "maxConcurrency: Input should be less than or "
                 "equal to 50"),
                ({"baseUrl": "ftp://x"}, "baseUrl: must be an http or https URL"),
                ({}, "name: an account named 'my-mj' already exists")):
            out = await http.post(base, data={**form, **changes})
            location = out.headers["location"]
            assert _message(location) == message, location
            assert "proxy-secret" not in location and "name=my-mj" in location
            back = await http.get(f"{gw.base_url}{location}")
            assert 'role="alert"' in back.text and 'value="my-mj"' in back.text

        edit = await http.get(f"{base}/{account_id}")
        assert edit.status_code == 200 and 'value="4"' in edit.text
        assert "proxy-secret-123" not in edit.text
        out = await http.post(f"{base}/{account_id}",
                              data={"csrf": csrf, "name": "my-mj-2", "baseUrl": mj.base_url,
                                    "maxConcurrency": "7", "useMode": "3", "secret": ""})
        assert _message(out.headers["location"]) == "Account my-mj-2 saved"
        got = (await gw.client(key).get("/hold/account/list")).json()["data"][0]
        assert (got["name"], got["maxConcurrency"], got["useMode"], got["hasCredentials"]) == (
            "my-mj-2", 7, 3, True)
        bad = await http.post(f"{base}/{account_id}",
                              data={"csrf": csrf, "maxConcurrency": "0"})
        assert "greater than or equal to 1" in _message(bad.headers["location"])

        out = await http.post(f"{base}/{account_id}/enabled",
                              data={"csrf": csrf, "enabled": "0"})
        assert _message(out.headers["location"]) == "Account my-mj-2 disabled"
        assert (await gw.client(key).get("/hold/account/list")).json()["data"][0][
            "enabled"] is False

        # another user: 404 on the account's page and on every action; nothing changes
        _, _ = await _signed_in(gw, other)
        other_csrf = await _csrf(other, base)
        assert (await other.get(f"{base}/{account_id}")).status_code == 404
        for action, data in (("", {"name": "stolen"}), ("/enabled", {"enabled": "1"}),
                             ("/delete", {})):
            answer = await other.post(f"{base}/{account_id}{action}",
                                      data={"csrf": other_csrf, **data})
            assert answer.status_code == 404, action
        assert (await other.get(f"{base}/x1")).status_code == 404
        # a form without the session's token does nothing
        forged = await http.post(f"{base}/{account_id}/delete", data={"csrf": "forged"})
        assert forged.status_code == 403
        still = (await gw.client(key).get("/hold/account/list")).json()["data"]
        assert [(a["name"], a["enabled"]) for a in still] == [("my-mj-2", False)]

        out = await http.post(f"{base}/{account_id}/delete", data={"csrf": csrf})
        assert _message(out.headers["location"]) == f"Account {account_id} deleted"
        assert (await gw.client(key).get("/hold/account/list")).json()["data"] == []
        assert user_id > 0


async def test_the_llm_usage_page_sums_the_calls(settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=1000, output_tokens=2000, cache_write_tokens=4000,
                             cache_read_tokens=10000) as up:
        s = llm_settings(settings, account("a1", up)).model_copy(update={"llm_prices": PRICE})
        async with serve_gateway(s, with_worker=False) as gw, httpx.AsyncClient() as http, \
                httpx.AsyncClient() as other:
            _, key = await _signed_in(gw, http)
            page = await http.get(f"{gw.base_url}/console/llm")
            assert "No LLM requests yet." in page.text
            for _ in range(2):
                made = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json={
                    "model": "claude-fake-1", "max_tokens": 4000, "messages": MSG})
                assert made.status_code == 200, made.text
            api = (await gw.http.get("/v1/usage", headers={"x-api-key": key})).json()["data"]
            assert [r["cost"] for r in api] == [5.1, 5.1]
            page = await http.get(f"{gw.base_url}/console/llm")
            assert re.search(r'id="llm-calls">2<', page.text)
            assert re.search(r'id="llm-spent">10.2<', page.text)
            assert re.search(r'id="llm-tokens">34k<', page.text)  # 2 x 17,000
            assert page.text.count("<code>claude-fake-1</code>") == 3  # per model + 2 rows
            assert "No LLM requests yet." not in page.text
            # paging: an empty later page, and a bad one is a clear 400
            later = await http.get(f"{gw.base_url}/console/llm?page=2")
            assert later.status_code == 200 and "No requests on page 2" in later.text
            bad = await http.get(f"{gw.base_url}/console/llm?page=abc")
            assert bad.status_code == 400 and "page: must be an integer" in bad.text
            # another user sees only his own (none)
            await _signed_in(gw, other)
            theirs = await other.get(f"{gw.base_url}/console/llm")
            assert "No LLM requests yet." in theirs.text and "claude-fake-1" not in theirs.text
