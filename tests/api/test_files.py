"""Files: attached by id, downloaded with safe headers, seen only by whoever may."""

from __future__ import annotations

import contextlib
import hashlib
import os

import pytest
import trio

from tests.conftest import register
from tests.hardening.helpers import Conn
from trio_chat.api.handlers import WHOLE, byte_range

BYTES = bytes(range(256)) * 40  # 10 KiB


async def upload(server, user, data: bytes, name: str = "notes.txt", content_type="text/plain"):
    """Through the service (the HTTP upload is tested on its own)."""

    async def chunks():
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    account = server.service.state.find_user(user.name)
    return await server.service.files.upload(
        account, name, content_type, chunks(), limit=5 * 1024 * 1024
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=100-", None),
        ("bytes=-0", None),
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", WHOLE),
        ("items=0-1", WHOLE),
        ("bytes=abc", WHOLE),
    ],
)
def test_byte_ranges(header, expected):
    assert byte_range(header, 100) == expected


async def test_attach_download_and_headers(chat_server, http):
    alice, bob, carol = [await register(http, n) for n in ("alice", "bob", "carol")]
    record = await upload(chat_server, alice, BYTES, name="../../etc/passwd é.txt")
    assert record.sha256 == hashlib.sha256(BYTES).hexdigest() and record.size == len(BYTES)
    # Until it is attached, only its uploader may see it.
    assert (await bob.get(f"/files/{record.id}")).status_code == 404
    mine = await alice.get(f"/files/{record.id}")
    assert mine.status_code == 200 and mine.content == BYTES
    assert mine.headers["content-length"] == str(len(BYTES))
    assert mine.headers["x-content-type-options"] == "nosniff"
    assert mine.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd%20%C3%A9.txt"
    )
    etag = mine.headers["etag"]
    assert etag == f'"{record.sha256}"'
    # Sent privately to bob: bob may see it now; carol never.
    sent = await alice.post("/send", {"to": "bob", "files": [record.id]})
    assert sent.status_code == 201, sent.text
    assert sent.json()["message"]["text"] == ""
    assert sent.json()["message"]["files"] == [
        {"id": record.id, "name": record.name, "size": len(BYTES), "content_type": "text/plain"}
    ]
    assert (await bob.get(f"/files/{record.id}")).content == BYTES
    for who in (carol,):
        response = await who.get(f"/files/{record.id}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "file_not_found"
        stolen = await who.post("/send", {"text": "look", "files": [record.id]})
        assert stolen.status_code == 404
    # Bob may forward what he can see.
    forwarded = await bob.post("/send", {"text": "fwd", "to": "carol", "files": [record.id]})
    assert forwarded.status_code == 201
    assert (await carol.get(f"/files/{record.id}")).status_code == 200
    # ETag and Range.
    cached = await bob.client.get(
        f"/files/{record.id}", headers={**bob.auth, "If-None-Match": etag}
    )
    assert cached.status_code == 304 and cached.content == b""
    part = await bob.client.get(
        f"/files/{record.id}", headers={**bob.auth, "Range": "bytes=100-199"}
    )
    assert part.status_code == 206 and part.content == BYTES[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(BYTES)}"
    tail = await bob.client.get(f"/files/{record.id}", headers={**bob.auth, "Range": "bytes=-5"})
    assert tail.content == BYTES[-5:]
    outside = await bob.client.get(
        f"/files/{record.id}", headers={**bob.auth, "Range": f"bytes={len(BYTES)}-"}
    )
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(BYTES)}"
    # Attaching is checked: too many, repeated, unknown.
    for files in ([], [record.id] * 2, ["f" + "0" * 20], [record.id] * 11):
        response = await alice.post("/send", {"text": "x", "files": files})
        assert response.status_code in (400, 404), files
    assert (await alice.post("/send", {"text": ""})).status_code == 400  # no text, no files


@pytest.mark.parametrize(
    ("uploaded", "served"),
    [
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("text/xml; charset=utf-8", "application/octet-stream"),
        ("image/png", "image/png"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("nonsense", "application/octet-stream"),
    ],
)
async def test_types_a_browser_would_run_are_served_as_bytes(chat_server, http, uploaded, served):
    alice = await register(http, "alice")
    record = await upload(chat_server, alice, b"<script>alert(1)</script>", "x.html", uploaded)
    response = await alice.get(f"/files/{record.id}")
    assert response.headers["content-type"] == served
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")


async def raw_upload(server, token: str, head_extra: str, body: bytes | None):
    """An upload over a raw socket: the head, then (maybe) the body; the first answer."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    head = (
        f"POST /files?name=big.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n{head_extra}\r\n"
    ).encode()
    await stream.send_all(head)
    if body is not None:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(body)
    conn = Conn(stream)
    response = await conn.response()
    await stream.aclose()
    return response


LIMIT = 5 * 1024 * 1024


async def test_uploads_up_to_the_limit_and_not_a_byte_more(chat_server, http):
    alice = await register(http, "alice")
    data = os.urandom(LIMIT)
    ok = await alice.client.post(
        "/files",
        content=data,
        params={"name": "exact.bin"},
        headers={**alice.auth, "Content-Type": "application/x-thing"},
    )
    assert ok.status_code == 201, ok.text
    body = ok.json()["file"]
    assert body["size"] == LIMIT and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["content_type"] == "application/x-thing" and body["name"] == "exact.bin"
    back = await alice.get(f"/files/{body['id']}")
    assert back.content == data
    # One byte more, declared: 413 before a byte of the body was sent (no 100 Continue).
    with trio.fail_after(5):  # were the server waiting for the body, this would not end
        declared = await raw_upload(
            chat_server,
            alice.token,
            f"Content-Length: {LIMIT + 1}\r\nExpect: 100-continue\r\n",
            None,
        )
    assert declared is not None and declared.status == 413

    # One byte more, chunked: cut at the limit.
    async def chunks():
        for i in range(0, LIMIT + 1, 65536):
            yield data[i : i + 65536] if i + 65536 <= LIMIT else (data + b"x")[i : i + 65536]

    chunked = await alice.client.post(
        "/files", content=chunks(), params={"name": "over.bin"}, headers=alice.auth
    )
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "payload_too_large"
    # Nothing of either was kept.
    assert len(chat_server.service.core.files.records) == 1
    assert list((chat_server.service.core.blobs.tmp).iterdir()) == []


async def test_upload_errors(chat_server, http):
    alice = await register(http, "alice")
    for params, content, code in (
        ({"name": "empty.txt"}, b"", "invalid_request"),
        ({}, b"data", "invalid_request"),
        ({"name": "tab\there"}, b"data", "invalid_request"),
        ({"name": "x" * 256}, b"data", "invalid_request"),
        ({"name": "a", "other": "b"}, b"data", "invalid_request"),
    ):
        response = await alice.client.post(
            "/files", content=content, params=params, headers=alice.auth
        )
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] == code
    anonymous = await http.post("/files", content=b"data", params={"name": "a"})
    assert anonymous.status_code == 401
    # Still serving after all that.
    assert (await alice.get("/status")).status_code == 200


async def test_head_of_a_download_is_its_headers_only(chat_server, http):
    alice = await register(http, "alice")
    record = await upload(chat_server, alice, BYTES)
    head = await alice.client.head(f"/files/{record.id}", headers=alice.auth)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(BYTES))
    assert head.headers["etag"] == f'"{record.sha256}"'
    # The connection is still good for the next request.
    assert (await alice.get(f"/files/{record.id}")).content == BYTES


async def test_304_and_204_carry_no_content_length(chat_server, http):
    alice = await register(http, "alice")
    record = await upload(chat_server, alice, BYTES)
    etag = f'"{record.sha256}"'
    cached = await alice.client.get(
        f"/files/{record.id}", headers={**alice.auth, "If-None-Match": etag}
    )
    assert cached.status_code == 304 and "content-length" not in cached.headers
    ended = await alice.post("/logout")
    assert ended.status_code == 204 and "content-length" not in ended.headers
