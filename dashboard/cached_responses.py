"""A body kept by ``body_cache.BodyCache`` (or derived from one) as an HTTP response: gzipped once
per process and body for clients that take it, with its ETag, answered ``304 Not Modified`` when
the client already holds it. Shared by the open API's list and the live maps' data, so a map page
costs the server what an API client does."""

from __future__ import annotations

from flask import Response, request
from werkzeug.wrappers import Response as BaseResponse

from dashboard.services.body_cache import CachedBody


def cached_json(cached: CachedBody, *, cache_control: str | None = None) -> BaseResponse:
    """Each encoding is its own representation, hence its own ETag. ``cache_control`` for a body
    that depends on the visitor (``private, no-cache``: the browser keeps it and asks again with
    ``If-None-Match``)."""
    if "gzip" in request.accept_encodings:
        response = Response(cached.gzipped, mimetype="application/json")
        response.content_encoding = "gzip"
        response.set_etag(cached.etag + "-gzip")
    else:
        response = Response(cached.body, mimetype="application/json")
        response.set_etag(cached.etag)
    response.vary.add("Accept-Encoding")
    if cache_control is not None:
        response.headers["Cache-Control"] = cache_control
        response.vary.add("Cookie")
    return response.make_conditional(request)
