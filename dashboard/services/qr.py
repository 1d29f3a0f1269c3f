"""The QR code posted at a lot: it opens the lot's quick checkout (``/checkout/temp/<lot id>``).

The URL must be absolute (a phone's camera has no page to be relative to): ``PARKOPS_BASE_URL``
when it is set, else the host the manager's browser reached, which the caller passes in. Error
correction "Q" (25 %) because printed signs outdoors get scratched, dirty and photographed at an
angle; the code stays small enough for a letter-size sign either way.
"""

from __future__ import annotations

import io

import segno


def checkout_url(base_url: str, lot_id: int) -> str:
    return f"{base_url.rstrip('/')}/checkout/temp/{lot_id}"


def svg(url: str, scale: int = 8) -> str:
    """The QR code of ``url`` as an SVG document (black on white, with the quiet zone)."""
    buffer = io.BytesIO()
    segno.make(url, error="q").save(
        buffer, kind="svg", scale=scale, dark="#000", light="#fff", xmldecl=False, svgclass=None
    )
    return buffer.getvalue().decode("utf-8")


def svg_data_uri(url: str, scale: int = 8) -> str:
    """The same SVG as a ``data:`` URI, for an ``<img>`` and a download link."""
    return segno.make(url, error="q").svg_data_uri(scale=scale, dark="#000", light="#fff")
