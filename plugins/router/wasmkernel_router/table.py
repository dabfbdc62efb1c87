"""The compiled route table: static paths in a dict, parameterised paths as
regular expressions tried in declaration order."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from kernel import WEBSOCKET, MatchKind, Request, Response, Route, RouteMatch, StartupError

_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"-?[0-9]+", int),
    "float": (r"-?[0-9]+(?:\.[0-9]+)?", float),
    "uuid": (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", uuid.UUID),
    "path": (r".*", str),
}
_PLACEHOLDER = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?}")


@attrs.frozen
class Pattern:
    """A parsed path: its regex, converters, and a shape that ignores
    parameter names (two routes with the same shape conflict)."""

    path: str
    regex: re.Pattern[str] | None
    converters: tuple[tuple[str, Callable[[str], Any]], ...]
    shape: str


def parse_path(route: Route) -> Pattern:
    parts: list[str] = []
    shape: list[str] = []
    converters: list[tuple[str, Callable[[str], Any]]] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(route.path):
        name, kind = placeholder.group(1), placeholder.group(2) or "str"
        if kind not in _CONVERTERS:
            raise StartupError(f"route {route.path!r} of plugin '{route.owner}': unknown converter {kind!r} (known: {', '.join(_CONVERTERS)})")
        if any(name == seen for seen, _ in converters):
            raise StartupError(f"route {route.path!r} of plugin '{route.owner}': parameter {name!r} appears twice")
        literal = route.path[position : placeholder.start()]
        parts.append(re.escape(literal))
        shape.append(literal)
        regex, convert = _CONVERTERS[kind]
        parts.append(f"(?P<{name}>{regex})")
        shape.append("{" + kind + "}")
        converters.append((name, convert))
        position = placeholder.end()
    parts.append(re.escape(route.path[position:]))
    shape.append(route.path[position:])
    if "{" in route.path[position:] or "}" in route.path[position:]:
        raise StartupError(f"route {route.path!r} of plugin '{route.owner}': malformed placeholder")
    compiled = re.compile("^" + "".join(parts) + "$") if converters else None
    return Pattern(route.path, compiled, tuple(converters), "".join(shape))


def _allowed(methods: dict[str, Route]) -> tuple[str, ...]:
    """The HTTP methods a path answers (a WebSocket route is no HTTP method)."""
    allowed = set(methods) - {WEBSOCKET}
    if "GET" in allowed:
        allowed.add("HEAD")
    return tuple(sorted(allowed))


def _options_route(path: str, allowed: tuple[str, ...]) -> Route:
    header = ", ".join(allowed)

    async def options(request: Request) -> Response:
        return Response(status=204, headers={"Allow": header})

    return Route(path, options, methods=("OPTIONS",), name=f"OPTIONS {path}", owner="router", include_in_schema=False)


class RouteTable:
    """A `kernel.Router`: built once, matched per request."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: list[tuple[Pattern, dict[str, Route]]] = []
        by_shape: dict[str, tuple[Pattern, dict[str, Route]]] = {}
        for route in routes:
            pattern = parse_path(route)
            pattern_methods = by_shape.setdefault(pattern.shape, (pattern, {}))[1]
            for method in route.methods:
                if method in pattern_methods:
                    other = pattern_methods[method]
                    raise StartupError(
                        f"conflicting routes: {method} {route.path} of plugin '{route.owner}' and {method} {other.path} of plugin '{other.owner}'"
                    )
                pattern_methods[method] = route
        for pattern, methods in by_shape.values():
            allowed = _allowed(methods)
            if "OPTIONS" not in methods:
                methods["OPTIONS"] = _options_route(pattern.path, (*allowed, "OPTIONS"))
            if pattern.regex is None:
                self._static[pattern.path] = methods
            else:
                self._dynamic.append((pattern, methods))
        self._routes = tuple(route for methods in [*self._static.values(), *(m for _, m in self._dynamic)] for route in dict.fromkeys(methods.values()))

    @property
    def routes(self) -> Sequence[Route]:
        return self._routes

    def match(self, method: str, path: str) -> RouteMatch:
        methods = self._static.get(path)
        if methods is not None:
            return self._pick(methods, method, {})
        allowed: set[str] = set()
        for pattern, methods in self._dynamic:
            assert pattern.regex is not None
            found = pattern.regex.match(path)
            if found is None:
                continue
            try:
                params = {name: convert(found.group(name)) for name, convert in pattern.converters}
            except ValueError:
                continue
            result = self._pick(methods, method, params)
            if result.kind is MatchKind.FOUND:
                return result
            allowed.update(result.allowed)
        if allowed:
            return RouteMatch(MatchKind.METHOD_NOT_ALLOWED, allowed=tuple(sorted(allowed)))
        return RouteMatch(MatchKind.NOT_FOUND)

    @staticmethod
    def _pick(methods: dict[str, Route], method: str, params: dict[str, Any]) -> RouteMatch:
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        if route is None:
            return RouteMatch(MatchKind.METHOD_NOT_ALLOWED, allowed=_allowed(methods))
        return RouteMatch(MatchKind.FOUND, route=route, params=params)
