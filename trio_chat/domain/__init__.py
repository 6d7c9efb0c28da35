"""Pure, synchronous domain logic: no I/O, no Trio, no HTTP.

Accounts, chats, messages, cursors, rate limits, reports and bans. Everything here is a
function of its arguments (time is passed in as milliseconds), so it is tested without
sockets or clocks.
"""
