"""Static files are sent compressed (brotli, else gzip, else as they are) and versioned ones are
cached for a year: what ``bench/pages.py`` measures, checked on the real app's responses."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import dash_leaflet
from flask.testing import FlaskClient

from dashboard.settings import PROJECT_ROOT
from dashboard.static_assets import choose_encoding

BOOTSTRAP = PROJECT_ROOT / "assets" / "00-bootstrap.min.css"


def _asset_url(client: FlaskClient, name: str) -> str:
    page = client.get("/real-time").get_data(as_text=True)
    found = re.search(rf'"(/[^"]*{re.escape(name)}[^"]*)"', page)
    assert found, f"{name} is not on the page"
    return found.group(1).replace("&amp;", "&")


def test_a_versioned_asset_is_sent_with_brotli_and_cached_for_a_year(client: FlaskClient) -> None:
    url = _asset_url(client, "00-bootstrap.min.css")
    assert "?m=" in url
    response = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert int(response.headers["Content-Length"]) == len(response.data) < BOOTSTRAP.stat().st_size // 5
    assert brotli.decompress(response.data) == BOOTSTRAP.read_bytes()


def test_gzip_or_nothing_for_clients_without_brotli(client: FlaskClient) -> None:
    url = _asset_url(client, "00-bootstrap.min.css")
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == BOOTSTRAP.read_bytes()
    refused = client.get(url, headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["Content-Encoding"] == "gzip"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    assert plain.data == BOOTSTRAP.read_bytes()


def test_an_unversioned_asset_url_is_revalidated_not_cached_for_a_year(client: FlaskClient) -> None:
    response = client.get("/assets/00-bootstrap.min.css", headers={"Accept-Encoding": "br"})
    assert response.headers["Content-Encoding"] == "br"
    assert "immutable" not in response.headers.get("Cache-Control", "")
    again = client.get(
        "/assets/00-bootstrap.min.css",
        headers={"Accept-Encoding": "br", "If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304 and again.data == b""


def test_component_bundles_are_sent_with_brotli(client: FlaskClient) -> None:
    url = _asset_url(client, "dash_leaflet.v")
    response = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "br"
    assert "max-age=31536000" in response.headers["Cache-Control"]
    bundle = (Path(dash_leaflet.__file__).parent / "dash_leaflet.js").read_bytes()
    assert brotli.decompress(response.data) == bundle


def test_choose_encoding() -> None:
    assert choose_encoding("gzip, deflate, br, zstd") == "br"
    assert choose_encoding("gzip;q=1.0, br;q=0") == "gzip"
    assert choose_encoding("identity") is None
    assert choose_encoding("") is None


def test_pages_send_the_regenerator_runtime_not_the_babel_polyfill(client: FlaskClient) -> None:
    """Dash's @babel/polyfill is not sent (nor served); the one part of it Dash's bundles use,
    the regenerator runtime, is, before the renderer that uses it."""
    page = client.get("/real-time").get_data(as_text=True)
    assert "polyfill@" not in page
    runtime = _asset_url(client, "vendor/regenerator-runtime-0.13.11.js")
    assert page.index(runtime) < page.index("dash_renderer")
    assert client.get(runtime).status_code == 200
    polyfill = "/_dash-component-suites/dash/deps/polyfill@7.v4_4_1m1.12.1.min.js"
    assert client.get(polyfill).status_code == 404


def test_pages_do_not_send_the_unused_table_bundle(client: FlaskClient) -> None:
    """dash_table's bundle is neither on a page nor served: no page shows a DataTable."""
    page = client.get("/real-time").get_data(as_text=True)
    assert "dash_table/" not in page
    assert "dash_core_components" in page  # the page's other Dash bundles still are
    bundle = client.get("/_dash-component-suites/dash/dash_table/bundle.js")
    assert bundle.status_code == 404


def test_no_code_uses_dash_table_whose_bundle_is_not_sent() -> None:
    """A DataTable would not draw: ``static_assets.drop_table_bundle`` keeps its bundle off every
    page. Using one means removing that call (and its tests) first."""
    sources = [
        path for folder in ("dashboard", "pages", "workers") for path in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    assert len(sources) > 50
    using = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sources
        if re.search(r"\bdash_table\b|\bDataTable\b", path.read_text(encoding="utf-8"))
        and path.name != "static_assets.py"
    ]
    assert using == [], f"DataTable used in {using}: its bundle is not sent (drop_table_bundle)"
