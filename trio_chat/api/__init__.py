"""Endpoint handlers: decode requests with cattrs, call the service, encode answers."""

from trio_chat.api.handlers import build_router

__all__ = ["build_router"]
