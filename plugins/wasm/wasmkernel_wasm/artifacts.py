"""The compile cache's files (an artifact framed with its sha256) and runtime
error messages: what worker processes need, without the kernel.

`hashlib` is imported only where a digest is computed: it loads OpenSSL's
libcrypto (~4 MiB resident), which a worker reading with ``verify=False``
never needs."""

from __future__ import annotations

import os
import re
from pathlib import Path

_CACHE_MAGIC = b"WKWASM1\n"


def _sha256(data: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(data).digest()


def write_cached(path: Path, artifact: bytes) -> None:
    """Store a compiled artifact atomically, framed with its sha256 so that a
    corrupt file is detected before the runtime ever sees it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(_CACHE_MAGIC + _sha256(artifact) + artifact)
    os.replace(tmp, path)


def read_cached(path: Path, verify: bool = True) -> bytes:
    """The artifact stored by `write_cached`; `ValueError` if missing framing
    or (with `verify`) a digest mismatch; `OSError` if unreadable."""
    data = path.read_bytes()
    header = len(_CACHE_MAGIC) + 32
    if not data.startswith(_CACHE_MAGIC) or len(data) < header:
        raise ValueError("not a WasmKernel cache file")
    artifact = data[header:]
    if verify and _sha256(artifact) != data[len(_CACHE_MAGIC) : header]:
        raise ValueError("checksum mismatch")
    return artifact


def first_line(exc: BaseException) -> str:
    """The first line of a runtime error's message (no backtraces)."""
    text = str(exc).strip()
    return text.splitlines()[0].removeprefix("RuntimeError: ") if text else type(exc).__name__


def error_cause(exc: BaseException, limit: int = 500) -> str:
    """A runtime error's first line and its innermost cause ("Caused by: ... N:
    cause", as wasmtime and wasmer print them), on one line, at most `limit`
    characters: the first line alone often hides why (e.g. "failed to
    compile: wasm[0]::function[0]" without "legacy_exceptions feature required")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = first_line(exc)
    causes = [line for line in lines[1:] if line != "Caused by:"]
    text = head if not causes else f"{head}: {re.sub(r'^[0-9]+: ', '', causes[-1])}"
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
