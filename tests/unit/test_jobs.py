"""The action vocabulary, components, timeouts and prices: pure domain rules."""

from __future__ import annotations

from typing import Any

import pytest

from gengate.errors import BadRequest
from gengate.jobs import EngineOptions, Job, JobStatus, Mode, resolve_timeout
from gengate.products.midjourney.actions import (
    ACTIONS,
    ResultKind,
    components_for,
    normalize_action,
)
from gengate.products.midjourney.product import DEFAULT_PRICES
from gengate.quota import PriceTable, from_milli, to_milli


def test_every_contract_action_is_known_with_its_parent_kind() -> None:
    grid = {f"upsample{n}" for n in range(1, 5)} | {f"variation{n}" for n in range(1, 5)}
    grid.add("reroll")
    upscaled_only = {"redo_upscale2", "redo_upscale4", "redo_upscale_subtle",
                     "redo_upscale_creative"}
    for name, spec in ACTIONS.items():
        if name in grid:
            assert spec.applies_to == {ResultKind.GRID}
        elif name in upscaled_only:
            assert spec.applies_to == {ResultKind.UPSCALED}
        else:
            assert spec.applies_to == {ResultKind.IMAGE}, name
    assert len(ACTIONS) == 27


@pytest.mark.parametrize(("alias", "canonical"), [("zoom_out_2x", "zoom_out_2"),
                                                  ("zoom_out_1_5x", "zoom_out_1_5"),
                                                  ("pan_left", "pan_left")])
def test_aliases(alias: str, canonical: str) -> None:
    assert normalize_action(alias).name == canonical


def test_unknown_action_names_the_field() -> None:
    with pytest.raises(BadRequest, match="action"):
        normalize_action("U1")


def test_components_follow_kind_version_and_shape() -> None:
    grid = components_for(ResultKind.GRID, version="7", width=1024, height=1024)
    assert grid[:4] == ["upsample1", "upsample2", "upsample3", "upsample4"]
    v7 = components_for(ResultKind.IMAGE, version="7", width=1024, height=1024)
    assert "upscale_subtle" in v7 and "make_square" not in v7 and "upscale2" not in v7
    v5 = components_for(ResultKind.IMAGE, version="5.2", width=896, height=1120)
    assert "upscale2" in v5 and "make_square" in v5
    niji5 = components_for(ResultKind.IMAGE, version="niji 5", width=512, height=512)
    assert "upscale4" in niji5
    assert components_for(ResultKind.UPSCALED, version="7", width=1, height=1,
                          action="upscale_creative") == ["redo_upscale_subtle",
                                                         "redo_upscale_creative"]
    assert components_for(ResultKind.TEXT, version="7", width=0, height=0) == []
    assert all(c in ACTIONS for c in v7 + v5 + grid)


@pytest.mark.parametrize(("mode", "requested", "expected"), [
    (Mode.FAST, None, 300), (Mode.TURBO, None, 300), (Mode.RELAX, None, 600),
    (Mode.FAST, 300, 300), (Mode.FAST, 1200, 1200), (Mode.RELAX, 600, 600),
])
def test_timeouts(mode: Mode, requested: int | None, expected: int) -> None:
    assert resolve_timeout(mode, requested) == expected


@pytest.mark.parametrize(("mode", "requested"), [(Mode.FAST, 299), (Mode.FAST, 1201),
                                                 (Mode.RELAX, 599), (Mode.TURBO, 0)])
def test_timeouts_out_of_range(mode: Mode, requested: int) -> None:
    with pytest.raises(BadRequest, match="timeout"):
        resolve_timeout(mode, requested)


def test_prices_most_specific_first() -> None:
    table = PriceTable({**DEFAULT_PRICES, "midjourney:upsample1:fast": 1.5})
    assert table.price_milli("midjourney", "imagine", "fast") == 2000
    assert table.price_milli("midjourney", "imagine", "relax") == 1000
    assert table.price_milli("midjourney", "upscale4", "turbo") == 8000
    assert table.price_milli("midjourney", "upsample1", "fast") == 1500
    assert table.price_milli("midjourney", "describe", "relax") == 1000
    assert table.price_milli("midjourney", "seed", "fast") == 0
    with pytest.raises(BadRequest):
        table.price_milli("suno", "music", "fast")
    with pytest.raises(BadRequest):
        PriceTable({"bad-key": 1})


def test_milli_roundtrip() -> None:
    assert from_milli(to_milli(2)) == 2 and isinstance(from_milli(2000), int)
    assert from_milli(to_milli(1.5)) == 1.5


def _job(quota: Any, **fields: Any) -> Job:
    return Job(id="j1", user_id=1, product="midjourney", action="imagine", mode=Mode.FAST,
               status=JobStatus.ON_QUEUE, progress=0, prompt="a cat", quota=quota,
               timeout=300, created_at=0.0, deadline=300.0, **fields)


def test_a_jobs_price_is_whole_milli_quota_as_the_ledger_keeps_it() -> None:
    # 1.5 quota is 1500 milli, exactly; a float never reaches the ledger
    job = _job(to_milli(1.5))
    assert job.charged() == ("fast", 1500) and from_milli(job.charged()[1]) == 1.5
    for inexact in (1.5, 1500.0, True):
        with pytest.raises(TypeError, match="milli-quota"):
            _job(inexact)


def test_a_fast_job_moved_to_relax_is_charged_relaxs_price() -> None:
    params = EngineOptions(relax_fallback=True, fallback_quota=to_milli(0.5)).to_json()
    job = _job(to_milli(2), slot_mode="relax", params=params)
    assert job.charged() == ("relax", 500)
    assert _job(to_milli(2), slot_mode="fast", params=params).charged() == ("fast", 2000)
