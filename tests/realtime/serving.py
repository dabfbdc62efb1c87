"""Kept for tests written before the kit was a pytest plugin: serving an
application and reading its events are in `wasmkernel.testing` (and the
`serve_app` fixture)."""

from __future__ import annotations

from wasmkernel.testing import ServerEvent, next_event, serving, sse_events

__all__ = ["ServerEvent", "next_event", "serving", "sse_events"]
