"""Typed storage for plugins' data on requests and routes (pytest's
`StashKey`): a plugin keeps ``QUERY: StashKey[Query] = StashKey("validated
query")`` in its public API, writes ``request.stash[QUERY] = ...`` and others
read it typed; no string keys, no collisions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

import attrs

T = TypeVar("T")
D = TypeVar("D")


@attrs.frozen(eq=False)
class StashKey(Generic[T]):
    """Names one kind of data in a `Stash`; compared by identity."""

    name: str


class Stash:
    """A mapping from `StashKey[T]` to values of type T."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[StashKey[Any], Any] | None = None) -> None:
        self._data: dict[StashKey[Any], Any] = dict(data or {})

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._data[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return self._data[key]  # type: ignore[no-any-return]

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...
    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...
    def get(self, key: StashKey[T], default: Any = None) -> Any:
        return self._data.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        return self._data.setdefault(key, default)  # type: ignore[no-any-return]

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[StashKey[Any]]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
