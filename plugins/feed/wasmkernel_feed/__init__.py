"""WasmKernel plugin `feed`: a live feed of posts and comments (SQLite),
pushed over Server-Sent Events and WebSocket, with a page at /feed/.

Public API: `FeedStore` (the SQLite storage) and `text_schema`."""

from wasmkernel_feed.plugin import text_schema
from wasmkernel_feed.store import FeedStore

__all__ = ["FeedStore", "text_schema"]
