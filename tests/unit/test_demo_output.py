"""`make run` prints commands to paste: each must stay one line whatever the width of the
terminal, and when the output is not a terminal at all (piped, logged)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gengate.client import Job
from gengate.demo import _summary

BASE = "http://127.0.0.1:8000"
KEY = "gg-rpgTpxQ_gdSt2RFzVWmxvhlORMnCNuBJX2A-hDpjor0"


@pytest.mark.parametrize(("width", "terminal"), [(40, False), (80, False), (40, True)])
def test_commands_are_never_wrapped(width: int, terminal: bool) -> None:
    job = Job("7ae30a8d", "midjourney", {
        "status": "SUCCESS", "message": "", "jobId": "7ae30a8d",
        "data": {"width": 1360, "height": 768, "components": ["upsample1", "variation1"],
                 "cdnImage": f"{BASE}/cdn/midjourney/2026-12-02/7ae30a8d.png",
                 "images": [f"{BASE}/cdn/midjourney/2026-12-02/7ae30a8d-{i}.png"
                            for i in range(1, 5)]}})
    out = io.StringIO()
    _summary(job, BASE, KEY, Console(file=out, width=width, force_terminal=terminal,
                                     color_system=None))
    lines = out.getvalue().splitlines()
    curls = [line for line in lines if line.strip().startswith("curl")]
    assert len(curls) == 2
    assert curls[0].strip().endswith("\"getUImages\":true}'")
    assert f"-H 'TT-API-KEY: {KEY}' -H 'Content-Type: application/json' -d" in curls[0]
    assert curls[1].strip() == (f"curl '{BASE}/midjourney/v1/fetch?jobId=7ae30a8d' "
                                f"-H 'TT-API-KEY: {KEY}'")
    assert any(line.strip().startswith(f"GENGATE_API_KEY={KEY} GENGATE_BASE_URL={BASE} ")
               and line.strip().endswith("imagine 'a red fox --ar 16:9'") for line in lines)
    assert f"  {BASE}/cdn/midjourney/2026-12-02/7ae30a8d-4.png" in lines
