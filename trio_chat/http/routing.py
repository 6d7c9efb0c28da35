"""Routing: exact paths to per-method handlers; 404 and 405 (with ``Allow``) otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from trio_chat import errors
from trio_chat.http.messages import Request, Response

Handler = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Route:
    method: str
    path: str
    handler: Handler
    # Held open for a long time (long-poll, event streams): the connection watches for the
    # client going away while it runs, and it does not count against the request deadline.
    long_lived: bool = False


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Route]] = {}

    def add(self, route: Route) -> None:
        methods = self._routes.setdefault(route.path, {})
        if route.method in methods:
            raise ValueError(f"duplicate route {route.method} {route.path}")
        methods[route.method] = route

    def match(self, method: str, path: str) -> Route:
        methods = self._routes.get(path)
        if methods is None:
            raise errors.NotFound(f"there is nothing at {path}")
        route = methods.get(method)
        if route is None:
            raise errors.MethodNotAllowed(method, sorted(methods))
        return route

    def routes(self) -> list[Route]:
        return [r for methods in self._routes.values() for r in methods.values()]
