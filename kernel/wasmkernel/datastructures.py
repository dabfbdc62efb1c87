"""Small containers for HTTP data: multi-value, case-insensitive headers and
multi-value query parameters, both ordered lists of (name, value) pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl

#: What headers may be given as (a response's, an error's).
HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | None


class _Pairs:
    """Ordered (name, value) pairs; names compare after `_key`."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        key = self._key
        self._items = [(key(k), v) for k, v in items]

    #: What names are compared as (`Headers`: lower-case).
    _key: Callable[[str], str] = staticmethod(str.__str__)

    def get(self, name: str, default: str | None = None) -> str | None:
        name = self._key(name)
        for key, value in self._items:
            if key == name:
                return value
        return default

    def getall(self, name: str) -> list[str]:
        name = self._key(name)
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
        return f"{type(self).__name__}({self._items!r})"

    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _ in self._items))


class Headers(_Pairs):
    """Case-insensitive, multi-value, ordered HTTP headers (names stored lower
    case): `headers["x"]` / `get` give the first value, `getall` every one;
    `set` replaces, `add` appends."""

    __slots__ = ()

    def __init__(self, items: HeadersInit = ()) -> None:
        super().__init__(items.items() if isinstance(items, Mapping) else items or ())

    _key = staticmethod(str.lower)

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        headers = cls()
        headers._items = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]
        return headers

    def to_asgi(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._items]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and other._items == self._items

    def set(self, name: str, value: str) -> None:
        name = name.lower()
        if any(key == name for key, _ in self._items):
            self.remove(name)
        self._items.append((name, value))

    __setitem__ = set

    def update(self, other: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Set every name of `other` (replacing existing values)."""
        for name, value in other.items() if isinstance(other, Mapping) else other:
            self.set(name, value)

    def setdefault(self, name: str, value: str) -> str:
        existing = self.get(name)
        if existing is None:
            self.add(name, value)
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


class QueryParams(_Pairs):
    """Query-string parameters; repeated keys keep every value in order."""

    __slots__ = ()

    @classmethod
    def parse(cls, query_string: bytes | str) -> QueryParams:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        return cls(parse_qsl(text, keep_blank_values=True, errors="replace"))

    def to_dict(self) -> dict[str, str | list[str]]:
        """One value per key, or a list where the key was repeated."""
        grouped: dict[str, list[str]] = {}
        for key, value in self._items:
            grouped.setdefault(key, []).append(value)
        return {key: values[0] if len(values) == 1 else values for key, values in grouped.items()}
