"""The browser client: static files shipped in this package, served by our own HTTP layer.

Every file under ``static/`` is read once, when the routes are built, and kept in memory with
its gzip form, its type and its ETag: the whole client is a few tens of KiB. Only names found
there are served, so a request can never name a path on disk.

- ``GET /`` (and ``GET /join/<token>``, where room links point) is the page. It must be
  revalidated on every load (``no-cache`` + ``ETag``), because it names the version of
  everything else.
- ``GET /static/<version>/<name>`` are its scripts, styles and icon. ``<version>`` is a hash of
  all of them, so they are cached for a year (``immutable``): a new release is a new URL.
  The modules import each other by relative URL and so stay within one version.

Every answer carries a strict Content-Security-Policy (scripts and styles from this server
only, never inline; images also from ``blob:``, for previews of downloaded files) and the
usual hardening headers.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from importlib import resources

import attrs

from trio_chat import errors
from trio_chat.http.messages import ChunkSender, Request, Response
from trio_chat.http.routing import Route

INDEX = "index.html"
# Where index.html names the version of the files it loads.
VERSION_MARK = b"{{version}}"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".txt")

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
PAGE_CACHE = "no-cache"  # stored, but asked about every time (a 304 when unchanged)
ASSET_CACHE = "public, max-age=31536000, immutable"


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str  # quoted, as sent
    gzipped: bytes | None = None  # when smaller than the body

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        suffix = name[name.rfind(".") :]
        if suffix not in TYPES:
            raise ValueError(f"no content type known for {name!r}")
        digest = hashlib.sha256(body).hexdigest()[:32]
        packed = gzip.compress(body, compresslevel=9, mtime=0) if suffix in COMPRESSIBLE else b""
        return cls(
            body=body,
            content_type=TYPES[suffix],
            etag=f'"{digest}"',
            gzipped=packed if packed and len(packed) < len(body) else None,
        )


@functools.cache
def web_client() -> WebClient:
    """The client as shipped in this package, read once per process."""
    return WebClient.from_package()


class WebClient:
    """The web client's files, and the handlers that serve them."""

    def __init__(self, files: dict[str, bytes]) -> None:
        page = files[INDEX]
        assets = {name: body for name, body in files.items() if name != INDEX}
        whole = hashlib.sha256()
        for name in sorted(assets):
            whole.update(b"%d:%s\0%d:" % (len(name), name.encode(), len(assets[name])))
            whole.update(assets[name])
        self.version = whole.hexdigest()[:16]
        if VERSION_MARK not in page:
            raise ValueError(f"{INDEX} does not name {VERSION_MARK.decode()}")
        self.page = Asset.of(INDEX, page.replace(VERSION_MARK, self.version.encode()))
        self.assets = {name: Asset.of(name, body) for name, body in assets.items()}

    @classmethod
    def from_package(cls) -> WebClient:
        folder = resources.files(__name__).joinpath("static")
        return cls({f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()})

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/", self.index),
            Route("GET", "/join/{token}", self.index),
            Route("GET", "/static/{version}/{name}", self.static),
        ]

    async def index(self, request: Request) -> Response:
        return _serve(request, self.page, PAGE_CACHE)

    async def static(self, request: Request) -> Response:
        _, _, version, name = request.path.split("/", 3)
        asset = self.assets.get(name)
        if version != self.version or asset is None:
            raise errors.NotFound(f"there is nothing at {request.path}")
        return _serve(request, asset, ASSET_CACHE)


def _serve(request: Request, asset: Asset, cache: str) -> Response:
    gzipped = asset.gzipped is not None and _accepts_gzip(request.header(b"accept-encoding"))
    etag = asset.etag[:-1] + '-gz"' if gzipped else asset.etag
    headers = [("ETag", etag), ("Cache-Control", cache), ("Vary", "Accept-Encoding")]
    if _matches(request.header(b"if-none-match"), etag):
        # A 304 must not say Content-Length: 0 (RFC 9110 §8.6: only the 200's length); the
        # HTTP layer writes one for any whole body, but none for a stream of unknown length.
        return Response(status=304, content_type=None, headers=headers, stream=_nothing)
    body = asset.body
    if gzipped and asset.gzipped is not None:
        body = asset.gzipped
        headers.append(("Content-Encoding", "gzip"))
    return Response(
        status=200,
        body=body,
        content_type=asset.content_type,
        headers=headers + SECURITY_HEADERS,
    )


async def _nothing(send_chunk: ChunkSender) -> None:
    return None


def _accepts_gzip(header: bytes | None) -> bool:
    if header is None:
        return False
    for item in header.decode("latin-1").lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() == "gzip":
            quality = params.replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _matches(header: bytes | None, etag: str) -> bool:
    if header is None:
        return False
    wanted = header.decode("latin-1")
    if wanted.strip() == "*":
        return True
    return etag in (t.strip().removeprefix("W/") for t in wanted.split(","))
