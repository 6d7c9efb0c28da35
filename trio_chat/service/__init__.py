"""The application layer: the domain, the store, live delivery and timers put together.

Handlers call ``ChatService``; it runs domain logic synchronously, commits the changed records
through the store, and only then answers, publishes events and arms timers.
"""
