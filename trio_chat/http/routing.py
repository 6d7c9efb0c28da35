"""Routing: paths to per-method handlers; 404 and 405 (with ``Allow``) otherwise.

A path is exact (``/send``) or a pattern with named segments (``/sessions/{session_id}``):
each ``{name}`` matches one non-empty path segment, percent-decoded, and is passed to the
handler as a keyword argument. Exact paths are found by one dict lookup; patterns are tried in
the order they were added, only when no exact path matched.

Every GET route answers HEAD too (RFC 9110 §9.3.2): the router hands HEAD to the GET handler
and the connection sends the head of its answer only. HEAD is not a route of its own, so
``routes()`` (and the OpenAPI document, which lists them) does not show it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import attrs

from trio_chat import errors
from trio_chat.http.messages import Request, Response

Handler = Callable[[Request], Awaitable[Response]]

_PARAM = re.compile(r"\{([a-z_]+)\}")


@attrs.frozen
class Route:
    method: str
    path: str
    handler: Handler
    # Held open for a long time (long-poll, event streams): the connection watches for the
    # client going away while it runs, and it does not count against the request deadline.
    long_lived: bool = False
    # Set for a route whose body streams to its handler (request.body_stream) under this
    # limit, instead of arriving whole under the server's JSON body limit.
    body_limit: int | None = None

    @property
    def is_pattern(self) -> bool:
        return is_pattern(self.path)


def is_pattern(path: str) -> bool:
    return "{" in path


def path_params(pattern: str, path: str) -> dict[str, str]:
    """The named segments of ``path``, which ``pattern`` matched, percent-decoded."""
    match = _compile(pattern).fullmatch(path)
    assert match is not None, (pattern, path)
    return {name: unquote(value) for name, value in match.groupdict().items()}


def _compile(pattern: str) -> re.Pattern[str]:
    return _COMPILED.get(pattern) or _COMPILED.setdefault(
        pattern,
        re.compile(
            "".join(
                f"(?P<{part[1:-1]}>[^/]+)" if _PARAM.fullmatch(part) else re.escape(part)
                for part in re.split(r"(\{[a-z_]+\})", pattern)
            )
        ),
    )


_COMPILED: dict[str, re.Pattern[str]] = {}


class Router:
    def __init__(self, warm_up: Callable[[], Awaitable[None]] | None = None) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        # Run by the server before it listens: the first requests' code paths, once.
        self.warm_up = warm_up

    def add(self, route: Route) -> None:
        methods = self._routes.setdefault(route.path, {})
        if route.method in methods:
            raise ValueError(f"duplicate route {route.method} {route.path}")
        methods[route.method] = route
        if route.is_pattern and len(methods) == 1:
            self._patterns.append((_compile(route.path), methods))

    def match(self, method: str, path: str) -> Route:
        methods = self._routes.get(path)
        if methods is None:
            methods = next((m for p, m in self._patterns if p.fullmatch(path)), None)
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
