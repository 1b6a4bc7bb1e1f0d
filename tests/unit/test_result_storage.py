"""Pure parts of result storage: Range parsing, object store URLs, retention periods, the
files of a result and the fetch body of an expired one."""

from __future__ import annotations

import pytest

from gengate.byterange import RangeNotSatisfiable, parse_range
from gengate.jobs import Job, JobStatus, Mode
from gengate.objectstore import ObjectStoreConfig
from gengate.products.midjourney.wire import fetch_body, list_item
from gengate.results import result_files
from gengate.retention import DAY, RetentionPolicy


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("bytes=0-9", (0, 10)),
    ("bytes=10-", (10, 100)),
    ("bytes=-5", (95, 100)),
    ("bytes=-500", (0, 100)),
    ("bytes=90-200", (90, 100)),
    (" bytes = 3 - 4 ", (3, 5)),
    ("bytes=0-1,5-6", None),  # several ranges: the whole file
    ("items=0-1", None),
    ("bytes=5-2", None),
    ("bytes=x-2", None),
    ("bytes=-", None),
])
def test_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-160", "bytes=-0"])
def test_ranges_past_the_end_are_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_an_empty_file_has_no_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-3", 0)


@pytest.mark.parametrize(("url", "parts"), [
    ("s3://results", (None, "results", "")),
    ("s3://results/gengate/prod", (None, "results", "gengate/prod")),
    ("http://minio:9000/results", ("http://minio:9000", "results", "")),
    ("https://acct.r2.cloudflarestorage.com/res/x/", ("https://acct.r2.cloudflarestorage.com",
                                                      "res", "x")),
])
def test_storage_urls(url: str, parts: tuple[str | None, str, str]) -> None:
    assert ObjectStoreConfig(url).parts() == parts


@pytest.mark.parametrize("url", ["ftp://host/bucket", "http://minio:9000", "s3:///x", "bucket"])
def test_storage_urls_that_name_no_bucket_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="bucket"):
        ObjectStoreConfig(url).parts()


def test_retention_by_product_name() -> None:
    policy = RetentionPolicy(30, {"midjourney": 7, "suno": 0})
    assert (policy.days("midjourney"), policy.days("suno"), policy.days("flux")) == (7, 0, 30)
    cutoffs, default = policy.cutoffs(100 * DAY)
    assert cutoffs == {"midjourney": 93 * DAY, "suno": None} and default == 70 * DAY
    assert policy.enabled and not RetentionPolicy(0, {"suno": 0}).enabled
    assert RetentionPolicy(0, {"midjourney": 1}).cutoffs(DAY) == ({"midjourney": 0.0}, None)


def test_result_files_of_old_and_new_results() -> None:
    assert result_files({"files": ["a.png", "atl.png"]}) == ["a.png", "atl.png"]
    assert result_files({"key": "m/1/j.png", "images": ["u"] * 4}) == [
        "m/1/j.png", "m/1/jtl.png", "m/1/jtr.png", "m/1/jbl.png", "m/1/jbr.png"]
    assert result_files({"key": "m/1/j.png"}) == ["m/1/j.png"]
    assert result_files({"kind": "text"}) == []


def _job(result: dict[str, object]) -> Job:
    return Job(id="j1", user_id=1, product="midjourney", action="imagine", mode=Mode.FAST,
               status=JobStatus.SUCCESS, progress=100, prompt="a cat", quota=2000,
               timeout=300, created_at=0.0, deadline=300.0, finished_at=10.0, result=result)


def test_an_expired_result_says_so_and_shows_no_dead_urls() -> None:
    live = {"cdnImage": "http://g/cdn/k.png", "discordImage": "http://g/cdn/k.png",
            "images": ["http://g/cdn/ktl.png"], "width": 8, "height": 8}
    body = fetch_body(_job(live))
    assert body["message"] == "" and "expired" not in body["data"]
    assert body["data"]["cdnImage"] == "http://g/cdn/k.png"
    gone = fetch_body(_job({**live, "expired": True, "retentionDays": 30}))
    assert gone["status"] == "SUCCESS" and gone["data"]["expired"] is True
    assert gone["message"] == "The result files of this job expired after 30 days and were " \
                              "deleted"
    assert gone["data"]["cdnImage"] is gone["data"]["images"] is gone["data"][
        "discordImage"] is None
    assert gone["data"]["width"] == 8
    item = list_item(_job({**live, "expired": True, "retentionDays": 7.5}))
    assert item["expired"] is True and item["cdn_image"] is None
    assert item["message"].endswith("after 7.5 days and were deleted")
