"""The pure parts of the Flux and GPT image products: pixel sizes, size correction, the
single-picture renderer, the local renderers and the TTAPI relay's requests."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from gengate.api.forms import parse_multipart
from gengate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gengate.imaging.picture import ratio_of, render_picture
from gengate.products.flux import product as flux
from gengate.products.flux.options import pixel_size as flux_size
from gengate.products.gpt_image import product as gpt
from gengate.products.gpt_image.options import corrected_size
from gengate.products.gpt_image.options import pixel_size as gpt_size
from gengate.providers.base import ProviderTask, TaskState


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------- flux sizes


@pytest.mark.parametrize(("size", "ratio", "first", "expected"), [
    ("1792x1024", None, None, (1792, 1024)),
    ("1024x1792", "16:9", None, (1024, 1792)),  # size wins
    (None, None, None, (1024, 1024)),
    (None, "1:1", None, (1024, 1024)),
    (None, "16:9", None, (1376, 768)),
    (None, "9:21", None, (672, 1568)),
    (None, None, (600, 300), (1440, 736)),  # an edit keeps its input's shape
    (None, None, (3000, 100), (1568, 672)),  # ... within 21:9
])
def test_flux_pixel_size(size: str | None, ratio: str | None, first: tuple[int, int] | None,
                         expected: tuple[int, int]) -> None:
    width, height = flux_size(size, ratio, first)
    assert (width, height) == expected
    assert width % 32 == 0 and height % 32 == 0 or size is not None


@pytest.mark.parametrize(("size", "ratio", "message"), [
    ("1000x1000", None, "size: must be one of 1024x1024, 1024x1792, 1792x1024"),
    (None, "5:1", "aspect_ratio: must be one of 21:9"),
])
def test_flux_refuses_sizes_outside_the_contract(size: str | None, ratio: str | None,
                                                 message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        flux_size(size, ratio)


# --------------------------------------------------------------------- gpt image sizes


@pytest.mark.parametrize(("model", "ratio", "size", "expected"), [
    ("gpt-image-1", None, None, (1024, 1024)),
    ("gpt-image-2", "16:9", None, (1360, 768)),
    ("gpt-image-2", "3:4", None, (880, 1184)),
    ("gpt-image-2-plus", None, "2048x1152", (2048, 1152)),
    ("gpt-image-2-plus", None, "100x100", (816, 816)),  # too few pixels: grown
    ("gpt-image-2-plus", None, "9000x1000", (3840, 1280)),  # too wide: 3:1, 3840 at most
    ("gpt-image-2-plus", None, "5000 x 5000", (2880, 2880)),  # too many pixels: shrunk
])
def test_gpt_pixel_size(model: str, ratio: str | None, size: str | None,
                        expected: tuple[int, int]) -> None:
    assert gpt_size(model, ratio, size) == expected


@pytest.mark.parametrize(("model", "ratio", "size", "message"), [
    ("gpt-image-1", "16:9", None, "aspect_ratio: only gpt-image-2 takes it"),
    ("gpt-image-2", None, "1024x1024", "size: only gpt-image-2-plus takes it"),
    ("gpt-image-2", "2:1", None, "aspect_ratio: must be one of"),
    ("gpt-image-2-plus", None, "large", "size: must be WIDTHxHEIGHT"),
    ("gpt-image-2-plus", None, "0x100", "size: must be WIDTHxHEIGHT"),
])
def test_gpt_refuses_fields_its_model_does_not_take(model: str, ratio: str | None,
                                                    size: str | None, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        gpt_size(model, ratio, size)


@pytest.mark.parametrize("asked", [(1, 1), (16, 9000), (3841, 3841), (655_360, 1),
                                   (1024, 640), (99_999, 99_999), (1280, 720)])
def test_corrected_sizes_are_always_within_bounds(asked: tuple[int, int]) -> None:
    width, height = corrected_size(*asked)
    assert width % 16 == 0 and height % 16 == 0
    assert max(width, height) <= 3840
    assert max(width, height) <= 3 * min(width, height)
    assert 655_360 <= width * height <= 8_294_400


# --------------------------------------------------------------------------- pictures


def test_pictures_have_the_exact_size_and_follow_the_prompt() -> None:
    def warmth(prompt: str) -> float:
        r, _, b = ImageStat.Stat(render_picture(prompt, 3, (160, 96))).mean
        return r - b

    assert render_picture("a lighthouse", 1, (173, 61)).size == (173, 61)
    assert warmth("desert at sunset") > warmth("ocean in winter")
    assert render_picture("x", 1, (32, 32)).tobytes() == render_picture("x", 1, (32, 32)).tobytes()


def test_references_show_through_an_edit() -> None:
    red = Image.new("RGB", (50, 50), "red")
    plain = ImageStat.Stat(render_picture("ocean in winter", 3, (96, 96))).mean
    edited = ImageStat.Stat(render_picture("ocean in winter", 3, (96, 96), [red])).mean
    assert edited[0] - edited[2] > plain[0] - plain[2] + 40


def test_ratio_of() -> None:
    assert ratio_of((1024, 768)) == (4, 3)
    assert ratio_of((1376, 768)) == (16, 9)


def test_local_renderers_make_the_jobs_size() -> None:
    task = ProviderTask(job_id="j1", action="edits", prompt="a green meadow", mode="fast",
                        product="flux", images=(png((40, 20), "blue"),),
                        options={"model": "flux-kontext-pro", "width": 1440, "height": 736,
                                 "output_format": "jpeg"})
    update = flux.PRODUCT.renderer().render(task, 0.25)
    assert update.state is TaskState.SUCCESS
    (file,) = update.files
    picture = Image.open(io.BytesIO(file.data or b""))
    assert picture.size == (360, 184) and picture.format == "JPEG"
    assert file.content_type == "image/jpeg"
    task = ProviderTask(job_id="j2", action="generations", prompt="a red fox", mode="fast",
                        product="gpt_image", options={"width": 1360, "height": 768})
    (file,) = gpt.PRODUCT.renderer().render(task, 1.0).files
    assert Image.open(io.BytesIO(file.data or b"")).size == (1360, 768)


# ------------------------------------------------------------------------ TTAPI relay


def test_flux_relay_requests_follow_the_front_they_came_in_by() -> None:
    def task(action: str, **options: object) -> ProviderTask:
        return ProviderTask(job_id="j", action=action, prompt="p", mode="fast", product="flux",
                            images=(b"img",) if action == "edits" else (), options=options)

    plain = flux.relay_request(task("generate", model="flux1-dev", aspect_ratio="16:9"))
    assert (plain.path, plain.json) == ("/flux/generate",
                                        {"prompt": "p", "mode": "flux1-dev",
                                         "aspect_ratio": "16:9"})
    bfl = flux.relay_request(task("generate", model="flux-kontext-max", front="bfl", seed=4,
                                  output_format="png"))
    assert bfl.path == "/bfl/v1/flux-kontext-max"
    assert bfl.json == {"prompt": "p", "seed": 4, "output_format": "png"}
    edit = flux.relay_request(task("edits", model="flux-2-pro", size="1024x1024"))
    assert edit.path == "/flux/edits" and edit.fields["size"] == "1024x1024"
    assert [name for name, _ in edit.files] == ["image"]


def test_gpt_relay_request_sends_the_corrected_size_and_the_urls() -> None:
    task = ProviderTask(job_id="j", action="generations", prompt="p", mode="fast",
                        product="gpt_image",
                        options={"model": "gpt-image-2-plus", "width": 816, "height": 816,
                                 "size": "100x100", "image_urls": ["https://x.example/a.png"]})
    request = gpt.relay_request(task)
    assert request.json == {"prompt": "p", "model": "gpt-image-2-plus", "size": "816x816",
                            "referImages": ["https://x.example/a.png"]}


# ------------------------------------------------------------------------------ forms


def _form(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "xyzBOUNDARY"
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                      if filename else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                 + data + b"\r\n")
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_forms_and_their_bounds() -> None:
    body, ctype = _form([("prompt", None, b"a cat"), ("image", "a.png", b"12345"),
                         ("image", "b.png", b"678")])
    form = parse_multipart(bytearray(body), ctype, max_file_bytes=10, max_files=2)
    assert form.fields == {"prompt": "a cat"}
    assert [u.data for u in form.uploads("image")] == [b"12345", b"678"]
    with pytest.raises(PayloadTooLarge, match="image: file too large"):
        parse_multipart(body, ctype, max_file_bytes=4, max_files=2)
    with pytest.raises(PayloadTooLarge, match="at most 1 files"):
        parse_multipart(body, ctype, max_file_bytes=10, max_files=1)
    with pytest.raises(UnsupportedMediaType):
        parse_multipart(body, "application/json", max_file_bytes=10, max_files=2)
    with pytest.raises(BadRequest, match="boundary"):
        parse_multipart(body, "multipart/form-data", max_file_bytes=10, max_files=2)


# ------------------------------------------------------------------------------ OpenAPI


def test_the_openapi_document_covers_every_new_path() -> None:
    from gengate.api.openapi import openapi_document

    document = openapi_document()
    paths = document["paths"]
    expected = {"/flux/generate": {"post"}, "/flux/edits": {"post"},
                "/bfl/v1/flux-kontext-pro": {"post"}, "/bfl/v1/flux-kontext-max": {"post"},
                "/flux/fetch": {"get", "post"}, "/openai/gpt/generations": {"post"},
                "/openai/gpt/fetch": {"get", "post"}, "/openai/4o-image/generations": {"post"},
                "/openai/4o-image/fetch": {"get", "post"}}
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    assert "multipart/form-data" in paths["/flux/edits"]["post"]["requestBody"]["content"]
    fetch = paths["/openai/gpt/fetch"]["get"]["responses"]["200"]["content"]
    ref = fetch["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert document["components"]["schemas"][ref]["properties"]["status"]["enum"] == [
        "ON_QUEUE", "SUCCESS", "FAILED"]
    generate = document["components"]["schemas"]["FluxGenerateRequest"]
    assert generate["properties"]["prompt"]["maxLength"] == 4000
