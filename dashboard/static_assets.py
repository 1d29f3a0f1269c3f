"""Static files (``assets/`` and Dash's component bundles) sent compressed hard, once, and cached
by browsers for a year when their URL names their version.

Why not leave it to Flask-Compress (which Dash's ``compress=True`` installs): it compresses every
response again on every request, at a level fast enough for callback JSON (zstd 3), so the map's
first load sent 470 KiB of JavaScript and CSS. These files never change while the process runs,
so each is compressed once per process at a level too slow for a per-request answer (brotli 9:
about 0.6 s for all of them, paid by the first visitor after a start; gzip 9 for a browser
without brotli, which browsers offer only over HTTPS and to localhost) and kept in memory, keyed
by its content; the bundles shrink by a tenth more. Responses keep ``Vary: Accept-Encoding``, a
per-encoding ETag and conditional GETs; a client that accepts no compression gets the file as is.

``assets/`` URLs carry Dash's cache-buster (``?m=<modification time>``), so those are marked
``public, max-age=31536000, immutable``: a changed file gets a new URL. Without it they stay
``no-cache`` (revalidated each time). Component bundles are fingerprinted by Dash, which already
gives them a year.
"""

from __future__ import annotations

import gzip
import hashlib
import threading

import brotli
from dash import _dash_renderer, dash_table
from flask import Flask, Response, request

ASSET_MAX_AGE = 31_536_000  # a year: the URL changes when the file does
MIMETYPES = frozenset({"text/css", "text/javascript", "application/javascript", "application/json"})
# Preferred first; the client's Accept-Encoding decides which of these it gets.
ENCODINGS = ("br", "gzip")
LARGE_FILE_BYTES = 1 << 20
MAX_ENTRIES = 256  # (file content, encoding) pairs per process: the app has a few dozen files


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        # plotly's 4.6 MB bundle (loaded when a chart is first drawn) would take over a second at 9
        return brotli.compress(data, quality=9 if len(data) < LARGE_FILE_BYTES else 5)
    return gzip.compress(data, compresslevel=9, mtime=0)


class CompressedFiles:
    """Compressed bodies by (content digest, encoding): a file edited while the process runs
    (development) is compressed again, never served stale."""

    def __init__(self) -> None:
        self._bodies: dict[tuple[bytes, str], bytes] = {}
        self._lock = threading.Lock()

    def get(self, data: bytes, encoding: str) -> bytes:
        key = (hashlib.blake2b(data, digest_size=16).digest(), encoding)
        body = self._bodies.get(key)
        if body is None:
            body = _compress(data, encoding)
            with self._lock:
                if len(self._bodies) >= MAX_ENTRIES:
                    self._bodies.clear()
                self._bodies[key] = body
        return body


def choose_encoding(accept_encoding: str) -> str | None:
    """The first of ``ENCODINGS`` the client accepts (``q=0`` refuses one)."""
    accepted = set()
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if params.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        accepted.add(name.strip())
    return next((encoding for encoding in ENCODINGS if encoding in accepted), None)


LEGACY_POLYFILL = "polyfill@"


def drop_legacy_polyfill() -> None:
    """Stop sending @babel/polyfill 7, which Dash puts before React on every page.

    It is core-js 2 (ES2015-2017 built-ins every browser Dash supports has natively) plus
    regenerator-runtime: 32 KiB compressed, but evaluating it held the main thread for about
    90 ms of a first load before anything could draw (``bench/pages.py``: first pin). The one
    part Dash's own bundles still use is the global ``regeneratorRuntime`` (the loader of lazy
    components in the renderer and dcc: a graph, a dropdown, an upload), which
    ``assets/vendor/regenerator-runtime-0.13.11.js`` provides: the same library, 2 KiB compressed.
    Dash keeps its dependency list as module state, so this changes it for the process (once is
    enough; again is harmless)."""
    for dependency in _dash_renderer._js_dist_dependencies:  # noqa: SLF001
        for key in ("relative_package_path", "external_url"):
            for mode, paths in dependency[key].items():
                dependency[key][mode] = [path for path in paths if LEGACY_POLYFILL not in path]


def drop_table_bundle() -> None:
    """Stop sending dash_table's bundle, which Dash puts on every page whether or not a page
    shows a DataTable: 33 KiB of JavaScript (8.5 KiB compressed) that every first load fetched
    and evaluated for nothing (about 8 ms of a first pin's main thread, ``bench/pages.py``).
    No page uses DataTable (``tests/test_static_assets.py`` fails, saying why, when one does:
    it would not draw without this bundle). Dash keeps the list as module state shared by the
    table's classes, so it is emptied in place (once is enough; again is harmless)."""
    dash_table._js_dist.clear()  # type: ignore[attr-defined]  # noqa: SLF001


def register_static_compression(server: Flask, routes_prefix: str) -> None:
    """Compress ``assets/`` and ``_dash-component-suites/`` responses (see the module's doc).
    Registered after Flask-Compress, so it runs before it and Flask-Compress leaves these alone."""
    assets = f"{routes_prefix}assets/"
    bundles = f"{routes_prefix}_dash-component-suites/"
    files = CompressedFiles()

    @server.after_request
    def compressed_static(response: Response) -> Response:
        path = request.path
        if not (path.startswith(assets) or path.startswith(bundles)):
            return response
        if path.startswith(assets) and request.args.get("m") and response.status_code in (200, 304):
            response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Encoding"
        encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
        if (
            encoding is None
            or response.status_code != 200
            or response.mimetype not in MIMETYPES
            or "Content-Encoding" in response.headers
        ):
            return response
        response.direct_passthrough = False
        etag, weak = response.get_etag()
        response.set_data(files.get(response.get_data(), encoding))
        response.headers["Content-Encoding"] = encoding
        if etag:
            response.set_etag(f"{etag}:{encoding}", weak=bool(weak))
        if request.method in ("GET", "HEAD"):
            response.make_conditional(request)
        return response
