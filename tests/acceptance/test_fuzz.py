"""Property-based run of every operation in /openapi.json (schemathesis) against a real
gengate on a socket: no request may answer 5xx, and every answer must agree with the
document (status codes, content types, bodies, headers).

``make test`` runs a small budget per operation; ``make fuzz`` the same test with a larger
one (``GENGATE_TEST_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi import checks as oas

from gengate.config import Settings
from gengate.testing import serve_gateway

from ..conftest import ADMIN_KEY

EXAMPLES = int(os.environ.get("GENGATE_TEST_FUZZ_EXAMPLES", "4"))

#: what every answer is held to (the document's promises; positive-data acceptance is left
#: out: a valid body may still name a job that does not exist, or cost more than the balance)
CHECKS = [
    not_a_server_error,
    oas.status_code_conformance,
    oas.content_type_conformance,
    oas.response_schema_conformance,
    oas.response_headers_conformance,
    oas.unsupported_method,
]


@dataclass
class Target:
    base_url: str
    api_key: str


class _ServerThread:
    """gengate under uvicorn in a thread of its own (schemathesis calls it synchronously)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.ready = threading.Event()
        self.target: Target | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="gengate-fuzz", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_gateway(self.settings) as gw:
            _, key = await gw.create_user(balance=1000)
            self.target = Target(gw.base_url, key)
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> Target:
        self._thread.start()
        self.ready.wait(60)
        if self.target is None:
            raise RuntimeError(f"gengate did not start: {self.error!r}")
        return self.target

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("fuzz") / "data"
    # the jobs the valid requests start are rendered small: what is checked is the API
    config = Settings(data_dir=data, admin_key=ADMIN_KEY, local_delay=0.0, local_scale=0.1,
                      rate_per_second=0, rate_per_minute=0, ip_rate_per_second=0,
                      admin_failures_per_minute=0, max_body_bytes=256 * 1024)
    with _ServerThread(config) as running:
        yield running


@pytest.fixture(scope="module")
def api(target: Target) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{target.base_url}/openapi.json")


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    """Hypothesis cases of one operation, each sent and held to :data:`CHECKS`."""

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    run()


@pytest.mark.timeout(0 if EXAMPLES > 4 else 300)  # a few tens of seconds at the default
def test_every_operation_keeps_to_the_document(api: schemathesis.schemas.BaseSchema,
                                               target: Target) -> None:
    operations = [result.ok() for result in api.get_all_operations()
                  if isinstance(result, Ok)]
    assert len(operations) > 60  # every route is in the document
    # the operator's calls last: they may revoke the key or deactivate the user
    operations.sort(key=lambda op: op.path.startswith("/admin"))
    failures: list[str] = []
    for operation in operations:
        admin = operation.path.startswith("/admin")
        headers = ({"Authorization": f"Bearer {ADMIN_KEY}"} if admin
                   else {"TT-API-KEY": target.api_key})
        # valid requests, then requests the document says are wrong (they must get a 4xx)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, target.base_url, headers)
            except Unsatisfiable:
                continue  # nothing in the operation can be wrong (no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - run all, report all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
