"""Every input is bounded, and the prompt checks cost a small constant per character."""

from __future__ import annotations

import base64
import io
import sys
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel

from gengate import errors
from gengate.api import schemas
from gengate.limits import MAX_PROMPT_CHARS
from gengate.products.midjourney import imaging
from gengate.products.midjourney.prompt import WordFilter, check_prompt


def _request_models() -> list[type[BaseModel]]:
    """Every request model of the TTAPI, hosting and admin fronts."""
    found: list[type[BaseModel]] = []
    pending = list(schemas._Wire.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def _unbounded(node: Any, path: str, defs: dict[str, Any]) -> list[str]:
    """The places in a JSON schema where a string, array or object has no size limit."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        return _unbounded(defs[node["$ref"].rsplit("/", 1)[-1]], path, defs)
    out: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, ()):
            out += _unbounded(option, path, defs)
    kind = node.get("type")
    # a date-time is parsed by its format (anything else is refused), not stored as text
    if kind == "string" and "enum" not in node and "const" not in node \
            and "maxLength" not in node and node.get("format") != "date-time":
        out.append(path)
    if kind == "array":
        if "maxItems" not in node:
            out.append(path)
        out += _unbounded(node.get("items"), f"{path}[]", defs)
    if kind == "object" and "properties" not in node:
        if "maxProperties" not in node:
            out.append(path)
        out += _unbounded(node.get("propertyNames"), f"{path}{{key}}", defs)
        out += _unbounded(node.get("additionalProperties"), f"{path}{{value}}", defs)
    for name, prop in node.get("properties", {}).items():
        out += _unbounded(prop, f"{path}.{name}", defs)
    return out


def test_the_walk_finds_the_request_models() -> None:
    names = {model.__name__ for model in _request_models()}
    assert {"ImagineRequest", "BlendRequest", "PromptCheckRequest", "HoldAccountAdd",
            "CreateAccountRequest", "TopUpRequest", "RedeliverRequest"} <= names


@pytest.mark.parametrize("model", _request_models(), ids=lambda m: m.__name__)
def test_every_string_list_and_map_field_has_a_bound(model: type[BaseModel]) -> None:
    schema = model.model_json_schema(mode="validation")
    assert _unbounded(schema, model.__name__, schema.get("$defs", {})) == []


def test_the_prompt_limit_is_discords_6000_characters() -> None:
    for model in (schemas.ImagineRequest, schemas.PromptCheckRequest):
        field = model.model_json_schema()["properties"]["prompt"]
        assert field["maxLength"] == MAX_PROMPT_CHARS == 6000
    assert schemas.InpaintRequest.model_json_schema()["properties"]["prompt"]["anyOf"][0][
        "maxLength"] == 6000


def _calls(fn: Any, *args: Any) -> int:
    """How many Python and C functions ``fn(*args)`` calls: a measure of work, not time."""
    count = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn(*args)
    except errors.GengateError:
        pass
    finally:
        sys.setprofile(None)
    return count


# Runs of one-letter tokens are where spelled-out words ("n u d e") are looked for: before,
# every window of up to 24 letters was joined and looked up (over 100 calls per character;
# a 1 MB prompt held the server for most of a minute).
# 40 expansions of 600 characters: as much as permutations may expand to (24,000 characters)
LARGEST_PERMUTATION = "{a,b,c,d,e}{f,g,h,i,j,k,l,m} " + ("a b " * 150)[:597]
ADVERSARIAL = ["a b ", "a ", "1 ", "a::1 ", "n u d ", "a 1 b 3 ", "a.b.", "e\u0301 "]


@pytest.mark.parametrize("unit", ADVERSARIAL)
def test_the_word_filter_does_a_small_constant_amount_of_work_per_character(unit: str) -> None:
    word_filter = WordFilter.default()
    half = (unit * MAX_PROMPT_CHARS)[: MAX_PROMPT_CHARS // 2]
    full = (unit * MAX_PROMPT_CHARS)[:MAX_PROMPT_CHARS]
    small, large = _calls(word_filter.find, half), _calls(word_filter.find, full)
    assert large <= 12 * len(full), large
    assert large <= 2.2 * small  # linear: twice the text, about twice the work


@pytest.mark.parametrize(("text", "expansions"), [
    ("a b " * (MAX_PROMPT_CHARS // 4), 1),
    ("x --sref " + "https://a.b/c::1 " * 300, 1),
    (LARGEST_PERMUTATION, 40),  # filtered once per expansion
])
def test_the_whole_prompt_check_does_bounded_work(text: str, expansions: int) -> None:
    assert len(text) <= MAX_PROMPT_CHARS
    check_prompt(text)  # accepted
    assert _calls(check_prompt, text) <= 16 * len(text) * expansions


def test_permutations_are_bounded_in_what_they_expand_to() -> None:
    assert len(check_prompt(LARGEST_PERMUTATION).permutations) == 40
    with pytest.raises(errors.InvalidParameter,
                       match=r"Permutations expand to more than 24000 characters"):
        check_prompt(LARGEST_PERMUTATION + " b")


def _png(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("L", size, 7).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_image_past_the_byte_limit_is_refused_before_it_is_decoded() -> None:
    # not even valid base64: the length alone refuses it
    with pytest.raises(errors.BadRequest, match=r"^img is too large: at most 1000 bytes$"):
        imaging.decode_base64_image("data:image/png;base64," + "%" * 5000, "img",
                                    max_bytes=1000)
    small = _png((8, 8))
    assert imaging.decode_base64_image(small, "img", max_bytes=1000).size == (8, 8)


def test_an_image_past_the_pixel_limit_is_refused_from_its_header() -> None:
    with pytest.raises(errors.BadRequest, match=r"^img is too large$"):
        imaging.decode_base64_image(_png((300, 300)), "img", max_pixels=300 * 299)
