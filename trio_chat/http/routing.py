"""Routing: exact paths to per-method handlers; 404 and 405 (with ``Allow``) otherwise.

Every GET route answers HEAD too (RFC 9110 §9.3.2): the router hands HEAD to the GET handler
and the connection sends the head of its answer only. HEAD is not a route of its own, so
``routes()`` (and the OpenAPI document, which lists them) does not show it.
"""

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
            if method == "HEAD" and "GET" in methods:
                return methods["GET"]
            allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
            raise errors.MethodNotAllowed(method, sorted(allowed))
        return route

    def routes(self) -> list[Route]:
        return [r for methods in self._routes.values() for r in methods.values()]
