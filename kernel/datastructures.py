"""Small containers for HTTP data: multi-value, case-insensitive headers and
multi-value query parameters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import parse_qsl


class Headers:
    """Case-insensitive, multi-value, ordered HTTP headers.

    Names are stored lower-case. `headers["x"]` / `get` return the first value,
    `getall` every value; `set` replaces, `add` appends.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in pairs]

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        headers = cls()
        headers._items = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]
        return headers

    def to_asgi(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._items]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def getall(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and other._items == self._items

    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _ in self._items))

    def set(self, name: str, value: str) -> None:
        name = name.lower()
        if any(key == name for key, _ in self._items):
            self.remove(name)
        self._items.append((name, value))

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def update(self, other: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Set every name of `other` (replacing existing values)."""
        for name, value in other.items() if isinstance(other, Mapping) else other:
            self.set(name, value)

    def setdefault(self, name: str, value: str) -> str:
        existing = self.get(name)
        if existing is None:
            self._items.append((name.lower(), value))
            return value
        return existing

    def add(self, name: str, value: str) -> None:
        self._items.append((name.lower(), value))

    def remove(self, name: str) -> None:
        name = name.lower()
        self._items = [(k, v) for k, v in self._items if k != name]

    def add_vary(self, value: str) -> None:
        """Add `value` to the `Vary` header unless it is already listed."""
        current = [v.strip() for v in (self.get("vary") or "").split(",") if v.strip()]
        if value.lower() not in (v.lower() for v in current):
            self.set("vary", ", ".join([*current, value]))


class QueryParams:
    """Query-string parameters; repeated keys keep every value in order."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    @classmethod
    def parse(cls, query_string: bytes | str) -> QueryParams:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        return cls(parse_qsl(text, keep_blank_values=True, errors="replace"))

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in self._items:
            if key == name:
                return value
        return default

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _ in self._items))

    def to_dict(self) -> dict[str, str | list[str]]:
        """One value per key, or a list where the key was repeated."""
        result: dict[str, str | list[str]] = {}
        for key in self.keys():
            values = self.getall(key)
            result[key] = values[0] if len(values) == 1 else values
        return result

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"
