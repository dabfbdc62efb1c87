"""Form bodies: ``application/x-www-form-urlencoded`` and
``multipart/form-data`` (python-multipart's sans-IO parser, fed from trio).
Limits: the body's `max_body_size` (413), `FormLimits` on parts (400);
files are spooled to disk above `spool_size` and closed (deleted) when the
request ends."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable
from typing import IO, Any
from urllib.parse import parse_qsl

import attrs
import trio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from wasmkernel.datastructures import Headers
from wasmkernel.errors import BadRequest, UnsupportedMediaType

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@attrs.frozen
class FormLimits:
    """At most `max_fields` fields and `max_files` files (400 beyond), each
    field's value at most `max_field_size` bytes; a file's content stays in
    memory up to `spool_size` bytes, then goes to a temporary file."""

    max_fields: int = 1000
    max_files: int = 100
    max_field_size: int = 1024 * 1024
    spool_size: int = 1024 * 1024


@attrs.define(eq=False)
class UploadFile:
    """An uploaded file: its client-given `filename` (never a path to trust),
    `content_type`, part `headers`, `size` in bytes and `file`, positioned at 0."""

    filename: str
    content_type: str
    headers: Headers
    file: IO[bytes] = attrs.field(repr=False)
    size: int = 0

    async def read(self, size: int = -1) -> bytes:
        """Read from `file` in a worker thread (it may be on disk)."""
        return await trio.to_thread.run_sync(self.file.read, size)


#: A form: (name, value) pairs in body order; a file's value is an `UploadFile`.
FormData = list[tuple[str, "str | UploadFile"]]


def parse_urlencoded(body: bytes, limits: FormLimits) -> FormData:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=limits.max_fields, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("Form body is not valid UTF-8") from None
    except ValueError:
        raise BadRequest(f"Form has more than {limits.max_fields} fields") from None
    return list(pairs)


@attrs.define
class _Multipart:
    """Collects the parts python-multipart's callbacks report."""

    limits: FormLimits
    form: FormData = attrs.field(factory=list)
    files: list[UploadFile] = attrs.field(factory=list)
    _header_field: bytes = b""
    _header_value: bytes = b""
    _headers: list[tuple[str, str]] = attrs.field(factory=list)
    _name: str = ""
    _value: bytearray = attrs.field(factory=bytearray)
    _file: UploadFile | None = None
    #: Chunks for a file already on disk, written in a worker thread after each body chunk.
    pending: list[tuple[UploadFile, bytes]] = attrs.field(factory=list)

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: setattr(self, "_header_field", self._header_field + data[start:end]),
            "on_header_value": lambda data, start, end: setattr(self, "_header_value", self._header_value + data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._value, self._file = [], bytearray(), None

    def _header_end(self) -> None:
        self._headers.append((self._header_field.decode("latin-1"), self._header_value.decode("utf-8", "replace")))
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        headers = Headers(self._headers)
        disposition, options = parse_options_header(headers.get("content-disposition") or "")
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequest("A multipart part has no 'Content-Disposition: form-data; name=...' header")
        self._name = options[b"name"].decode("utf-8", "replace")
        if len(self.form) >= self.limits.max_fields + self.limits.max_files:
            raise BadRequest(f"Form has more than {self.limits.max_fields + self.limits.max_files} parts")
        if b"filename" in options:
            if len(self.files) >= self.limits.max_files:
                raise BadRequest(f"Form has more than {self.limits.max_files} files")
            spooled = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_size)  # noqa: SIM115 - closed when the request ends
            content_type = headers.get("content-type") or "application/octet-stream"
            self._file = UploadFile(options[b"filename"].decode("utf-8", "replace"), content_type, headers, spooled)
            self.files.append(self._file)
        elif sum(not isinstance(value, UploadFile) for _, value in self.form) >= self.limits.max_fields:
            raise BadRequest(f"Form has more than {self.limits.max_fields} fields")

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is None:
            self._value += chunk
            if len(self._value) > self.limits.max_field_size:
                raise BadRequest(f"Form field '{self._name[:60]}' exceeds {self.limits.max_field_size} bytes")
            return
        self._file.size += len(chunk)
        if self._file.size > self.limits.spool_size:  # on disk (or going there): written off the event loop
            self.pending.append((self._file, chunk))
        else:
            self._file.file.write(chunk)

    def _end(self) -> None:
        if self._file is None:
            try:
                self.form.append((self._name, self._value.decode("utf-8")))
            except UnicodeDecodeError:
                raise BadRequest(f"Form field '{self._name[:60]}' is not valid UTF-8") from None
        else:
            self.form.append((self._name, self._file))


async def parse_multipart(content_type: str, chunks: AsyncIterable[bytes], limits: FormLimits, files: list[UploadFile]) -> FormData:
    """Parse a multipart body arriving as `chunks`; every file opened is
    appended to `files` at once (for the caller to close, even on errors)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UnsupportedMediaType("multipart/form-data without a boundary parameter")
    parts = _Multipart(limits, files=files)
    parser = MultipartParser(boundary, parts.callbacks())
    try:
        async for chunk in chunks:
            parser.write(chunk)
            await _flush(parts)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    await _flush(parts)
    if parser.state is not MultipartState.END:
        raise BadRequest("Malformed multipart body: it ends before its closing boundary")
    for upload in files:
        await trio.to_thread.run_sync(upload.file.seek, 0)
    return parts.form


async def _flush(parts: _Multipart) -> None:
    """Write what belongs to files already on disk, off the event loop."""
    if parts.pending:
        pending, parts.pending = parts.pending, []
        await trio.to_thread.run_sync(lambda: [upload.file.write(chunk) for upload, chunk in pending])
