"""The Content-Security-Policy every answer carries.

Scripts: our own origin, plus the hashes of the inline scripts Dash writes into each page (the
renderer's start line and the clientside callbacks, ``Dash.csp_hashes``): no ``'unsafe-inline'``,
no ``'unsafe-eval'``, so an injected script does not run. Styles keep ``'unsafe-inline'``: Dash
components, Leaflet and Plotly set inline styles and inject ``<style>`` elements. Images: ours,
``data:`` (Leaflet and Plotly draw some), and any ``https:`` image, as content pages written by
admins may show one from elsewhere; the tile server's origin is added when it is plain http.
Connections (callbacks, the live change stream) go to our origin only. Nothing may frame the app
but itself, and forms post only to it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dash


def tile_origin(tile_url: str) -> str | None:
    """The origin of a Leaflet tile URL template (``{s}`` subdomains become a wildcard)."""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(dash_app: dash.Dash, tile_url: str) -> str:
    """Built per answer (hashing a dozen short scripts takes microseconds): Dash adds the pages'
    title script on the first request, after the app is built, so a policy computed once at
    start would block it."""
    images = ["'self'", "data:", "https:"]
    origin = tile_origin(tile_url)
    if origin and not origin.startswith("https:"):
        images.append(origin)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *dict.fromkeys(dash_app.csp_hashes())],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": images,
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
