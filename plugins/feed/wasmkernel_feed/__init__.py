"""WasmKernel plugin `feed`: a live feed of posts and comments (SQLite),
pushed over Server-Sent Events and WebSocket, with a page at /feed/.

Public API: `FeedStore` (the SQLite storage) and the typed models."""

from wasmkernel_feed.models import Comment, NewText, Post, Posts, Thread, new_text
from wasmkernel_feed.store import FeedStore

__all__ = ["Comment", "FeedStore", "NewText", "Post", "Posts", "Thread", "new_text"]
