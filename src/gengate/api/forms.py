"""``multipart/form-data`` bodies for the product routes that take uploads (``/flux/edits``)
or a form field (``/flux/fetch``), parsed from the bytes the front already read (and bounded
by ``max_body_bytes``), with bounds on the number and size of parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

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


class _Collector:
    """The parser's callbacks: one part at a time into ``form``, within the bounds."""

    def __init__(self, max_file_bytes: int, max_files: int):
        self.form = Form()
        self.max_file_bytes, self.max_files = max_file_bytes, max_files
        self.headers: dict[str, str] = {}
        self.field, self.value = bytearray(), bytearray()
        self.chunks: list[bytes] = []
        self.size = self.parts = 0
        self.name: str | None = None
        self.filename: str | None = None

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks
        return {"on_part_begin": self.begin, "on_part_data": self.data, "on_part_end": self.end,
                "on_header_field": self.header_field, "on_header_value": self.header_value,
                "on_header_end": self.header_end, "on_headers_finished": self.headers_done}

    def begin(self) -> None:
        self.headers.clear()
        self.chunks.clear()
        self.size = 0
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(f"body: at most {MAX_PARTS} form parts")

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field.extend(data[start:end])

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value.extend(data[start:end])

    def header_end(self) -> None:
        self.headers[self.field.decode("latin-1").lower()] = self.value.decode("utf-8", "replace")
        self.field.clear()
        self.value.clear()

    def headers_done(self) -> None:
        self.name, self.filename = _disposition(self.headers.get("content-disposition", ""))

    def data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        is_file = self.filename is not None
        limit = self.max_file_bytes if is_file else MAX_FIELD_BYTES
        if self.size > limit:
            what = "file" if is_file else "form field"
            raise PayloadTooLarge(f"{self.name or 'body'}: {what} too large: the limit is "
                                  f"{limit} bytes")
        self.chunks.append(data[start:end])

    def end(self) -> None:
        if not self.name:
            return
        data = b"".join(self.chunks)
        if self.filename is None:
            self.form.fields[self.name] = data.decode("utf-8", "replace")
            return
        if len(self.form.files) >= self.max_files:
            raise PayloadTooLarge(f"{self.name}: at most {self.max_files} files")
        self.form.files.append(Upload(self.name, self.filename,
                                      self.headers.get("content-type", ""), data))


def parse_multipart(body: bytes | bytearray, content_type: str | None, *, max_file_bytes: int,
                    max_files: int) -> Form:
    """The fields and files of a form body; 415 unless multipart, 400 when malformed,
    413 past ``max_file_bytes`` for one file or ``max_files`` files."""
    if not is_multipart(content_type):
        raise UnsupportedMediaType("Content-Type must be multipart/form-data")
    collector = _Collector(max_file_bytes, max_files)
    parser = MultipartParser(_boundary(content_type or ""), collector.callbacks())
    try:
        # a bytearray is read in place (the parser only slices and searches it)
        parser.write(cast(bytes, body))
        parser.finalize()
    except MultipartParseError:
        raise BadRequest("body: malformed multipart/form-data") from None
    return collector.form


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
