"""``multipart/form-data`` bodies for the product routes that take uploads (``/flux/edits``)
or a form field (``/flux/fetch``), parsed from the bytes the front already read (and bounded
by ``max_body_bytes``), with bounds on the number and size of parts."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError

from gengate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["Form", "Upload", "is_multipart", "parse_multipart"]

MAX_PARTS = 32
MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file."""

    name: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def uploads(self, *names: str) -> list[Upload]:
        """The files sent under any of ``names`` (``image``, ``image[]``), in order."""
        return [f for f in self.files if f.name in names]


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "multipart/form-data"


def _boundary(content_type: str) -> bytes:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"').encode("latin-1")
    raise BadRequest("body: multipart/form-data needs a boundary")


def parse_multipart(body: bytes, content_type: str | None, *, max_file_bytes: int,
                    max_files: int) -> Form:
    """The fields and files of a form body; 415 unless multipart, 400 when malformed,
    413 past ``max_file_bytes`` for one file or ``max_files`` files."""
    if not is_multipart(content_type):
        raise UnsupportedMediaType("Content-Type must be multipart/form-data")
    form = Form()
    state: dict[str, object] = {}
    headers: dict[str, str] = {}
    header_field = bytearray()
    header_value = bytearray()
    chunks: list[bytes] = []
    size = [0, 0]  # bytes of this part, parts seen

    def on_part_begin() -> None:
        headers.clear()
        chunks.clear()
        size[0] = 0
        size[1] += 1
        if size[1] > MAX_PARTS:
            raise BadRequest(f"body: at most {MAX_PARTS} form parts")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[header_field.decode("latin-1").lower()] = header_value.decode("utf-8", "replace")
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        name, filename = _disposition(headers.get("content-disposition", ""))
        state["name"], state["filename"] = name, filename

    def on_part_data(data: bytes, start: int, end: int) -> None:
        size[0] += end - start
        limit = max_file_bytes if state.get("filename") is not None else MAX_FIELD_BYTES
        if size[0] > limit:
            what = "file" if state.get("filename") is not None else "form field"
            raise PayloadTooLarge(f"{state.get('name') or 'body'}: {what} too large: the limit "
                                  f"is {limit} bytes")
        chunks.append(data[start:end])

    def on_part_end() -> None:
        name, filename = state.get("name"), state.get("filename")
        if not isinstance(name, str) or not name:
            return
        data = b"".join(chunks)
        if isinstance(filename, str):
            if len(form.files) >= max_files:
                raise PayloadTooLarge(f"{name}: at most {max_files} files")
            form.files.append(Upload(name, filename, headers.get("content-type", ""), data))
        else:
            form.fields[name] = data.decode("utf-8", "replace")

    parser = MultipartParser(_boundary(content_type or ""), {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    })
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise BadRequest("body: malformed multipart/form-data") from None
    return form


def _disposition(value: str) -> tuple[str | None, str | None]:
    """``name`` and ``filename`` of a ``Content-Disposition: form-data`` header."""
    name = filename = None
    for part in value.split(";")[1:]:
        key, _, raw = part.strip().partition("=")
        text = raw.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        if key.strip().lower() == "name":
            name = text
        elif key.strip().lower() == "filename":
            filename = text
    return name, filename
