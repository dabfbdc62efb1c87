"""A failing program's stderr as its error body may show it (the module's
`stderr_excerpt` grant): its last bytes, with no control or format
characters (no forged lines, no terminal escapes, no bidi tricks) and no host
path (the call's scratch directory, granted directories, the registry's
directory), on one line. The log keeps the whole stderr."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: The most a module entry may grant (`stderr_excerpt`, in bytes).
MAX_EXCERPT = 4096
_HIDDEN = "<host path>"


def _printable(char: str) -> str:
    return " " if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") else char


def stderr_excerpt(stderr: bytes, limit: int, host_paths: Iterable[str]) -> str:
    """`stderr` decoded (invalid UTF-8 replaced), host paths replaced by
    ``<host path>``, control characters by spaces, runs of spaces collapsed,
    then its last `limit` UTF-8 bytes (cut after the paths are hidden, so no
    part of one shows); "" for no stderr or `limit` 0."""
    if limit <= 0:
        return ""
    text = stderr.decode("utf-8", "replace")
    for path in sorted({p.rstrip("/") for p in host_paths if len(p.rstrip("/")) > 1}, key=len, reverse=True):
        text = text.replace(path, _HIDDEN)
    encoded = re.sub(r"\s+", " ", "".join(_printable(char) for char in text)).strip().encode()
    if len(encoded) <= limit:
        return encoded.decode()
    return "\u2026" + encoded[-limit:].decode("utf-8", "ignore").lstrip()
