"""The application layer: the domain, the store, live delivery and timers put together.

``core`` holds what every job shares (state, store, clock, hub, timers, the commit path);
``accounts``, ``messaging``, ``moderation`` and ``delivery`` are one job each and use only the
core and the domain; ``chat.ChatService`` is the facade the handlers call. A write runs the
domain synchronously, commits through the core, and only then answers and publishes.
"""
