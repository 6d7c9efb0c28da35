"""The web client's files: served with their types, cached by version, revalidated by ETag,
compressed when asked, under a strict Content-Security-Policy; nothing else is served."""

from __future__ import annotations

import gzip
import re
from importlib import resources

import pytest

from trio_chat.web import INDEX, WebClient, web_client

STATIC = resources.files("trio_chat.web").joinpath("static")
NAMES = sorted(f.name for f in STATIC.iterdir() if f.is_file() and f.name != INDEX)
PLAIN = {"Accept-Encoding": "identity"}


def asset_url(name: str) -> str:
    return f"/static/{web_client().version}/{name}"


async def test_the_page_is_public_and_locked_down(http):
    response = await http.get("/", headers=PLAIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    # The page names the version of everything else, so it is asked about on every load.
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert asset_url("app.js") in response.text and "{{version}}" not in response.text
    # A room's invite link opens the same page, which offers to ask to join.
    link = await http.get("/join/I3Zws2RSyTo-qZubMOsfH7pENnYw2vKn", headers=PLAIN)
    assert link.status_code == 200 and link.content == response.content


@pytest.mark.parametrize("name", NAMES)
async def test_each_file_has_its_type_and_is_cached_for_good(http, name):
    response = await http.get(asset_url(name), headers=PLAIN)
    assert response.status_code == 200
    assert response.content == STATIC.joinpath(name).read_bytes()
    expected = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".txt": "text/plain; charset=utf-8",
    }[name[name.rfind(".") :]]
    assert response.headers["content-type"] == expected
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_a_known_etag_is_answered_304_without_a_body(http):
    first = await http.get("/", headers=PLAIN)
    etag = first.headers["etag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await http.get("/", headers={**PLAIN, "If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
        # RFC 9110 §8.6: a 304 may only repeat the 200's length; it says none.
        assert "content-length" not in again.headers
        assert "transfer-encoding" not in again.headers
    changed = await http.get("/", headers={**PLAIN, "If-None-Match": '"stale"'})
    assert changed.status_code == 200 and changed.content == first.content
    # The connection carries on after a 304: keep-alive is intact.
    assert (await http.get("/healthz")).status_code == 200


async def test_text_is_gzipped_when_the_browser_asks(http):
    plain = await http.get(asset_url("app.js"), headers=PLAIN)
    async with http.stream("GET", asset_url("app.js"), headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "Accept-Encoding"
        assert r.headers["etag"] != plain.headers["etag"]
        assert int(r.headers["content-length"]) == len(raw) < len(plain.content) / 2
    assert gzip.decompress(raw) == plain.content
    refused = await http.get(asset_url("app.js"), headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


@pytest.mark.parametrize(
    "path",
    [
        "/static/{v}/nothing.js",
        "/static/{v}/index.html",  # the page is served at / only
        "/static/{v}/..%2Fapp.js",
        "/static/0000000000000000/app.js",  # another version
        "/static/app.js",
        "/index.html",
    ],
)
async def test_nothing_else_is_served(http, path):
    response = await http.get(path.format(v=web_client().version))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_scripts_insert_text_only_and_the_page_runs_no_inline_code():
    for name in NAMES:
        if name.endswith(".js"):
            source = STATIC.joinpath(name).read_text()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
                assert sink not in source, (name, sink)
            assert not re.search(r"\beval\(|new Function\(|setTimeout\(['\"`]", source), name
    page = STATIC.joinpath(INDEX).read_text()
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script type="module" src="/static/{{version}}/app.js">'
    ]
    assert not re.search(r"\son[a-z]+=|\sstyle=|javascript:", page)
    assert "http://" not in page and "https://" not in page  # nothing from other hosts


def test_the_version_follows_the_files():
    files = {INDEX: b"<script src=/static/{{version}}/a.js></script>", "a.js": b"1"}
    first = WebClient(files)
    assert first.version == WebClient(dict(files)).version
    assert WebClient({**files, "a.js": b"2"}).version != first.version
    assert first.version.encode() in first.page.body
    with pytest.raises(ValueError, match="content type"):
        WebClient({**files, "tool.exe": b"MZ"})
    with pytest.raises(ValueError, match="version"):
        WebClient({**files, INDEX: b"<p>no version</p>"})
