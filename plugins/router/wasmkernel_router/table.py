"""The compiled route table: static paths in a dict, parameterised paths
(`Route.pattern`, compiled by the kernel) tried in declaration order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wasmkernel import WEBSOCKET, MatchKind, PathPattern, Request, Response, Route, RouteMatch, StartupError


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
    """A `wasmkernel.Router`: built once, matched per request."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: list[tuple[PathPattern, dict[str, Route]]] = []
        by_shape: dict[str, tuple[PathPattern, dict[str, Route]]] = {}
        for route in routes:
            pattern = route.pattern
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
            params = pattern.match(path)
            if params is None:
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
