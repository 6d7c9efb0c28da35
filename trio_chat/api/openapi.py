"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written out by hand, next to nothing else, so that it reads as documentation. Tests keep it
true: its paths and methods must be exactly the router's, and real responses must validate
against the schemas named here.
"""

from __future__ import annotations

from typing import Any

from trio_chat.config import Config

Schema = dict[str, Any]

TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 UTC with milliseconds, e.g. 2026-11-26T23:40:29.123Z",
}
NULLABLE_TIMESTAMP: Schema = {"oneOf": [TIMESTAMP, {"type": "null"}]}
TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": 4096}
USERNAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,32}$"}
CLIENT_ID: Schema = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 64,
    "description": "the sender's idempotency key: a repeat within 24 h answers 200 with the "
    "original and changes nothing; another body with it is 409 client_id_conflict",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Schema] = {
    "Comment": _object(
        {
            "id": {"type": "string"},
            "message_id": {"type": "string"},
            "author": {"type": "string"},
            "text": TEXT,
            "sent_at": TIMESTAMP,
            "client_id": CLIENT_ID,
        }
    ),
    "Message": _object(
        {
            "id": {"type": "string", "description": "unique and opaque"},
            "chat": {"type": "string", "description": "'general', or 'dm:<a>:<b>' for private"},
            "author": {"type": "string"},
            "to": {"type": ["string", "null"], "description": "recipient of a private message"},
            "text": TEXT,
            "sent_at": TIMESTAMP,
            "comments": {"type": "array", "items": _ref("Comment")},
            "client_id": CLIENT_ID,
            "scheduled_at": {
                **NULLABLE_TIMESTAMP,
                "description": "the time it was scheduled for; null if sent at once",
            },
            "expires_at": {
                **NULLABLE_TIMESTAMP,
                "description": "when it expires for you: null if no lifetime or not yet "
                "delivered to you (and in events)",
            },
            "files": {"type": "array", "items": _ref("FileRef")},
        }
    ),
    "FileRef": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string", "description": "a label only"},
            "size": {"type": "integer"},
            "content_type": {"type": "string"},
        }
    ),
    "File": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "size": {"type": "integer"},
            "content_type": {"type": "string"},
            "sha256": {"type": "string"},
        }
    ),
    "FileResponse": _object({"file": _ref("File")}),
    "Scheduled": _object(
        {
            "id": {"type": "string"},
            "send_at": TIMESTAMP,
            "chat": {"type": "string"},
            "to": {"type": ["string", "null"]},
            "text": TEXT,
            "files": {"type": "array", "items": _ref("FileRef")},
        }
    ),
    "ScheduledResponse": _object({"scheduled": _ref("Scheduled")}),
    "ScheduledList": _object({"scheduled": {"type": "array", "items": _ref("Scheduled")}}),
    "Event": {
        "oneOf": [
            _object(
                {
                    "type": {"const": "message"},
                    "cursor": {"type": "string"},
                    "message": _ref("Message"),
                }
            ),
            _object(
                {
                    "type": {"const": "comment"},
                    "cursor": {"type": "string"},
                    "comment": _ref("Comment"),
                }
            ),
            _object(
                {"type": {"const": "banned"}, "cursor": {"type": "string"}, "until": TIMESTAMP}
            ),
            _object({"type": {"const": "unbanned"}, "cursor": {"type": "string"}}),
            _object(
                {
                    "type": {"const": "scheduled_failed"},
                    "cursor": {"type": "string"},
                    "scheduled": _ref("Scheduled"),
                    "error": _object({"code": {"type": "string"}, "message": {"type": "string"}}),
                }
            ),
            _object(
                {
                    "type": {"const": "join_request"},
                    "cursor": {"type": "string"},
                    "room": {"type": "string"},
                    "username": {"type": "string", "description": "who asks to join"},
                }
            ),
            _object(
                {
                    "type": {"const": "room_joined"},
                    "cursor": {"type": "string"},
                    "room": _ref("Room"),
                    "username": {"type": "string", "description": "who joined"},
                }
            ),
            _object(
                {
                    "type": {"const": "join_refused"},
                    "cursor": {"type": "string"},
                    "room": {"type": "string"},
                }
            ),
            _object(
                {
                    "type": {"const": "room_left"},
                    "cursor": {"type": "string"},
                    "room": {"type": "string"},
                    "username": {"type": "string", "description": "who left or was removed"},
                }
            ),
            _object(
                {
                    "type": {"const": "read"},
                    "cursor": {"type": "string"},
                    "chat": {"type": "string"},
                    "up_to": {
                        "type": "string",
                        "description": "message id: it and everything before it are read "
                        "(sent to the user's other sessions)",
                    },
                }
            ),
        ]
    },
    "Room": _object(
        {
            "id": {"type": "string", "description": "room:<opaque>; also its chat id"},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "owner": {"type": "string"},
            "members": {"type": "array", "items": {"type": "string"}},
            "created_at": TIMESTAMP,
        }
    ),
    "RoomResponse": _object(
        {"room": _ref("Room")},
        {
            "requests": {
                "type": "array",
                "description": "pending join requests (for the owner only)",
                "items": _object({"username": {"type": "string"}, "requested_at": TIMESTAMP}),
            }
        },
    ),
    "Rooms": _object({"rooms": {"type": "array", "items": _ref("Room")}}),
    "RoomRequest": _object({"name": {"type": "string", "minLength": 1, "maxLength": 100}}),
    "MemberRequest": _object({"username": {"type": "string"}}),
    "LinkRequest": _object(
        {},
        {
            "expires_in": {
                "type": ["string", "null"],
                "description": "a duration (3600, 90m, 7d); at most 30 days, default 7 days",
            },
            "max_uses": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
        },
    ),
    "Link": _object(
        {
            "id": {"type": "string", "description": "names the link to revoke it"},
            "expires_at": TIMESTAMP,
            "uses_left": {"type": ["integer", "null"]},
        },
        {
            "token": {"type": "string", "description": "only when created: it is kept hashed"},
            "url": {"type": "string", "description": "<public url>/join/<token>"},
        },
    ),
    "LinkResponse": _object({"link": _ref("Link")}),
    "Links": _object({"links": {"type": "array", "items": _ref("Link")}}),
    "JoinRequest": _object(
        {"token": {"type": "string", "description": "the link's token or its whole URL"}}
    ),
    "JoinResponse": _object(
        {
            "request": _object(
                {
                    "room": {"type": "string"},
                    "name": {"type": "string"},
                    "status": {"const": "pending"},
                }
            )
        }
    ),
    "DecisionRequest": _object({"approve": {"type": "boolean"}}),
    "Error": _object(
        {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": _object(
                            {"path": {"type": "string"}, "message": {"type": "string"}}
                        ),
                    },
                    "retry_after": {"type": "integer"},
                    "banned_until": TIMESTAMP,
                    "allow": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["code", "message"],
            }
        }
    ),
    "Credentials": _object(
        {"username": USERNAME, "password": {"type": "string", "minLength": 8, "maxLength": 256}},
        {
            "device": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": 64,
                "description": "names the session this creates (default 'unnamed')",
            }
        },
    ),
    "Session": _object(
        {
            "username": {"type": "string"},
            "token": {"type": "string"},
            "session": {"type": "string", "description": "this session's id"},
        }
    ),
    "SessionInfo": _object(
        {
            "id": {"type": "string"},
            "device": {"type": "string"},
            "created_at": TIMESTAMP,
            "last_seen_at": {**TIMESTAMP, "description": "to the minute"},
            "current": {"type": "boolean", "description": "the session making this request"},
        }
    ),
    "Sessions": _object({"sessions": {"type": "array", "items": _ref("SessionInfo")}}),
    "ReadRequest": _object(
        {
            "chat": {"type": "string"},
            "up_to": {"type": "string", "description": "a message id of that chat"},
        }
    ),
    "SendRequest": _object(
        {},
        {
            "text": {
                **TEXT,
                "minLength": 0,
                "description": "1-4096 characters; may be empty or absent when files are attached",
            },
            "files": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 10,
                "description": "ids of files to attach (yours, or ones you can see)",
            },
            "to": {"type": ["string", "null"], "description": "private recipient"},
            "chat": {
                "type": ["string", "null"],
                "description": "any chat of yours (general, dm:…, room:…); not with 'to'",
            },
            "client_id": CLIENT_ID,
            "send_at": {
                **NULLABLE_TIMESTAMP,
                "description": "send later (at most 30 days ahead): answered 202",
            },
        },
    ),
    "SendResponse": _object({"message": _ref("Message")}),
    "CommentRequest": _object(
        {"message_id": {"type": "string"}, "text": TEXT}, {"client_id": CLIENT_ID}
    ),
    "CommentResponse": _object({"comment": _ref("Comment")}),
    "ReportRequest": _object(
        {"username": {"type": "string"}},
        {"reason": {"type": ["string", "null"], "maxLength": 1024}},
    ),
    "ReportResponse": _object(
        {
            "username": {"type": "string"},
            "reports": {"type": "integer"},
            "threshold": {"type": "integer"},
            "banned_until": NULLABLE_TIMESTAMP,
        }
    ),
    "ConnectResponse": _object(
        {
            "chat": {"const": "general"},
            "history": {"type": "array", "items": _ref("Message")},
            "unread": {"type": "array", "items": _ref("Message")},
            "cursor": {"type": "string", "description": "resume /updates or /events from here"},
        }
    ),
    "Status": _object(
        {
            "username": {"type": "string"},
            "chats": {"type": "array", "items": {"type": "string"}},
            "rate_limit": _object(
                {
                    "limit": {"type": ["integer", "null"]},
                    "remaining": {"type": ["integer", "null"]},
                    "reset_at": NULLABLE_TIMESTAMP,
                }
            ),
            "banned_until": NULLABLE_TIMESTAMP,
            "unread": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "description": "chat id -> unread messages, for every chat of yours",
            },
        }
    ),
    "Messages": _object({"messages": {"type": "array", "items": _ref("Message")}}),
    "Updates": _object(
        {"events": {"type": "array", "items": _ref("Event")}, "cursor": {"type": "string"}}
    ),
    "Health": _object({"status": {"const": "ok"}}),
}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    return {str(code): _json(_ref("Error"), "error") for code in codes}


def _body(name: str, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _op(summary: str, responses: dict[str, Schema], *, auth: bool = True, **extra: Any) -> Schema:
    # Any call can meet the connection cap (overloaded) or a storage failure
    # (storage_unavailable): both are 503.
    op: Schema = {"summary": summary, "responses": {**responses, **_errors(503)}, **extra}
    if auth:
        op["security"] = AUTH
        op["responses"] = {**op["responses"], **_errors(401)}
    return op


def _web_client() -> dict[str, dict[str, Schema]]:
    """The browser client's page and files (docs/WEB.md): public, cacheable, not JSON."""

    def files(summary: str, kind: str, *params: str) -> dict[str, Schema]:
        return {
            "get": _op(
                summary,
                {
                    "200": {
                        "description": f"{kind}, with ETag, Cache-Control and a strict "
                        "Content-Security-Policy",
                        "content": {"*/*": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "If-None-Match matched the ETag"},
                    # Only a file can be missing: the page is always there.
                    **(_errors(404) if "name" in params else {}),
                },
                auth=False,
                parameters=[_path(p) for p in params],
            )
        }

    return {
        "/": files("The web client", "the page (text/html)"),
        "/join/{token}": files(
            "The web client, opened on a room's invite link: it offers to ask to join",
            "the page (text/html)",
            "token",
        ),
        "/static/{version}/{name}": files(
            "The web client's scripts, styles and icon; the version in the path changes "
            "with them, so they are cached for a year",
            "the file",
            "version",
            "name",
        ),
    }


def document(config: Config) -> Schema:
    rate_headers = {
        name: {"schema": {"type": "integer"}, "description": text}
        for name, text in (
            ("X-RateLimit-Limit", "messages allowed per period"),
            ("X-RateLimit-Remaining", "messages left in this period"),
            ("X-RateLimit-Reset", "seconds until the period ends (0: none open)"),
        )
    }
    paths: dict[str, dict[str, Schema]] = {
        "/register": {
            "post": _op(
                "Create an account and a first session",
                {"201": _json(_ref("Session"), "created"), **_errors(400, 409)},
                auth=False,
                requestBody=_body("Credentials"),
            )
        },
        "/login": {
            "post": _op(
                "Start a new session (a new token every time)",
                {"200": _json(_ref("Session")), **_errors(400, 401, 429)},
                auth=False,
                requestBody=_body("Credentials"),
            )
        },
        "/logout": {
            "post": _op(
                "End this session: the token stops working",
                {"204": {"description": "ended"}, **_errors(400)},
            )
        },
        "/sessions": {
            "get": _op(
                "Your sessions (one per login or registration), newest first",
                {"200": _json(_ref("Sessions")), **_errors(400)},
            )
        },
        "/sessions/{session}": {
            "delete": _op(
                "End one of your sessions: its token stops working, its streams end",
                {"204": {"description": "ended"}, **_errors(404)},
                parameters=[_path("session")],
            )
        },
        "/read": {
            "post": _op(
                "Mark a message and everything before it in its chat as read",
                {"204": {"description": "read (it never moves back)"}, **_errors(400, 404)},
                requestBody=_body("ReadRequest"),
            )
        },
        "/connect": {
            "post": _op(
                "Join the common chat; get history and everything unread",
                {"200": _json(_ref("ConnectResponse")), **_errors(400)},
                requestBody={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "additionalProperties": False}
                        }
                    },
                },
            )
        },
        "/status": {
            "get": _op(
                "Your chats, rate limit and ban", {"200": _json(_ref("Status")), **_errors(400)}
            )
        },
        "/send": {
            "post": _op(
                "Send to the common chat, or privately with 'to'",
                {
                    "200": {
                        **_json(_ref("SendResponse"), "a repeated client_id: the original"),
                        "headers": rate_headers,
                    },
                    "201": {**_json(_ref("SendResponse"), "sent"), "headers": rate_headers},
                    "202": _json(_ref("ScheduledResponse"), "scheduled for send_at"),
                    **_errors(400, 403, 404, 409, 429),
                },
                requestBody=_body("SendRequest"),
            )
        },
        "/messages": {
            "get": _op(
                "A page of a chat's messages, oldest first",
                {"200": _json(_ref("Messages")), **_errors(400, 404)},
                parameters=[
                    _query("chat", {"type": "string"}, "chat id (default general)"),
                    _query("with", {"type": "string"}, "the other party of a private chat"),
                    _query("before", {"type": "string"}, "only messages before this message id"),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 100}, "default 50"
                    ),
                ],
            )
        },
        "/comment": {
            "post": _op(
                "Comment on a message you can see",
                {
                    "200": _json(_ref("CommentResponse"), "a repeated client_id: the original"),
                    "201": _json(_ref("CommentResponse"), "created"),
                    **_errors(400, 403, 404, 409),
                },
                requestBody=_body("CommentRequest"),
            )
        },
        "/report": {
            "post": _op(
                f"Report a user; {config.ban_threshold} distinct reporters ban them",
                {"201": _json(_ref("ReportResponse"), "recorded"), **_errors(400, 404, 409)},
                requestBody=_body("ReportRequest"),
            )
        },
        "/files": {
            "post": _op(
                f"Upload a file (the raw bytes as the body, at most {config.max_file_size} "
                "bytes); attach it to messages by id",
                {"201": _json(_ref("FileResponse"), "stored"), **_errors(400, 413)},
                parameters=[_query("name", {"type": "string"}, "the file's name, 1-255 chars")],
                requestBody={
                    "required": True,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
            )
        },
        "/files/{file}": {
            "get": _op(
                "Download a file you may see (uploader, or a message carrying it)",
                {
                    "200": {"description": "the bytes (Content-Disposition: attachment)"},
                    "206": {"description": "a single Range"},
                    "304": {"description": "If-None-Match matched the ETag"},
                    **_errors(400, 404, 416),
                },
                parameters=[_path("file")],
            )
        },
        "/scheduled": {
            "get": _op(
                "Your scheduled messages still to be sent, soonest first",
                {"200": _json(_ref("ScheduledList")), **_errors(400)},
            )
        },
        "/scheduled/{scheduled}": {
            "delete": _op(
                "Cancel a scheduled message: it will never be sent",
                {"204": {"description": "cancelled"}, **_errors(404, 409)},
                parameters=[_path("scheduled")],
            )
        },
        "/rooms": {
            "post": _op(
                "Create a room: you are its owner and only member",
                {"201": _json(_ref("RoomResponse"), "created"), **_errors(400)},
                requestBody=_body("RoomRequest"),
            ),
            "get": _op("Your rooms", {"200": _json(_ref("Rooms")), **_errors(400)}),
        },
        "/rooms/{room}": {
            "get": _op(
                "A room of yours (with pending requests, for its owner)",
                {"200": _json(_ref("RoomResponse")), **_errors(400, 404)},
                parameters=[_path("room")],
            ),
            "delete": _op(
                "Delete a room (owner)",
                {"204": {"description": "deleted"}, **_errors(403, 404)},
                parameters=[_path("room")],
            ),
        },
        "/rooms/{room}/members": {
            "post": _op(
                "Add a member at once (owner)",
                {"201": _json(_ref("RoomResponse"), "added"), **_errors(400, 403, 404, 409)},
                parameters=[_path("room")],
                requestBody=_body("MemberRequest"),
            )
        },
        "/rooms/{room}/members/{username}": {
            "delete": _op(
                "Remove a member (owner), or leave (the member itself)",
                {"204": {"description": "removed"}, **_errors(403, 404, 409)},
                parameters=[_path("room"), _path("username")],
            )
        },
        "/rooms/{room}/links": {
            "post": _op(
                "Create an invite link (owner); joining with it needs your approval",
                {"201": _json(_ref("LinkResponse"), "created"), **_errors(400, 403, 404)},
                parameters=[_path("room")],
                requestBody=_body("LinkRequest", required=False),
            ),
            "get": _op(
                "The room's live links (owner)",
                {"200": _json(_ref("Links")), **_errors(400, 403, 404)},
                parameters=[_path("room")],
            ),
        },
        "/rooms/{room}/links/{link}": {
            "delete": _op(
                "Revoke a link (owner), named by its id or its token",
                {"204": {"description": "revoked"}, **_errors(403, 404)},
                parameters=[_path("room"), _path("link")],
            )
        },
        "/rooms/{room}/requests/{username}": {
            "post": _op(
                "Approve or refuse a request to join (owner)",
                {
                    "200": _json(_ref("RoomResponse"), "approved"),
                    "204": {"description": "refused"},
                    **_errors(400, 403, 404),
                },
                parameters=[_path("room"), _path("username")],
                requestBody=_body("DecisionRequest"),
            )
        },
        "/join": {
            "post": _op(
                "Ask to join a room through a link; the owner decides",
                {
                    "202": _json(_ref("JoinResponse"), "pending"),
                    **_errors(400, 404, 409, 429),
                },
                requestBody=_body("JoinRequest"),
            )
        },
        "/updates": {
            "get": _op(
                "Long-poll for events after a cursor",
                {"200": _json(_ref("Updates")), **_errors(400)},
                parameters=[
                    _query("since", {"type": "string"}, "cursor; default: now"),
                    _query(
                        "timeout",
                        {"type": "number", "minimum": 0, "maximum": config.longpoll_max_timeout},
                        f"seconds, default {config.longpoll_default_timeout:g}",
                    ),
                ],
            )
        },
        "/events": {
            "get": _op(
                "Server-sent events after a cursor (Last-Event-ID or since)",
                {
                    "200": {
                        "description": "an event stream: id / event / data per event",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400),
                },
                parameters=[
                    _query("since", {"type": "string"}, "cursor; default: now"),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "cursor; wins over since",
                    },
                ],
            )
        },
        "/healthz": {"get": _op("Liveness", {"200": _json(_ref("Health"))}, auth=False)},
        **_web_client(),
        "/openapi.json": {
            "get": _op(
                "This document",
                {"200": _json({"type": "object"})},
                auth=False,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trio-chat",
            "version": "0.1.0",
            "description": "A small durable chat server. See docs/API.md for the whole story.",
        },
        "servers": [{"url": f"http://{config.host}:{config.port}"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
