"""trio-chat: a small, durable chat server on Trio and h11."""

__version__ = "0.1.0"
