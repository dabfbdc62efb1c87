"""WasmKernel plugin: JSON Schema (draft 2020-12) validation of request bodies, query and path parameters.

Its public API: the stash keys under which a validated request carries its
converted query parameters and path parameters (``request.stash[QUERY]``).
"""

from __future__ import annotations

from typing import Any

from wasmkernel import StashKey

QUERY: StashKey[dict[str, Any]] = StashKey("validated query parameters")
PATH: StashKey[dict[str, Any]] = StashKey("validated path parameters")
