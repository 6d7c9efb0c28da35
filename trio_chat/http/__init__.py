"""Our own HTTP/1.1 server on h11: the connection loop, routing, limits and errors.

h11 does the framing; everything else (one Trio task per connection, keep-alive, deadlines,
size limits, graceful shutdown, mapping errors to answers) lives here.
"""

from trio_chat.http.messages import Request, Response
from trio_chat.http.routing import Route, Router
from trio_chat.http.server import HTTPServer

__all__ = ["HTTPServer", "Request", "Response", "Route", "Router"]
