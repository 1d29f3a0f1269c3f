"""Photos are checked by what they contain, re-encoded without their metadata, size-limited and
kept under the instance path."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from dashboard.services import photos
from dashboard.services.errors import ValidationFailed


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_a_photo_is_re_encoded_as_jpeg_under_the_instance_path(tmp_path):
    stored = photos.store_photo(tmp_path, png())
    path = photos.photo_file(tmp_path, stored.stored_name)
    assert path is not None and path.parent == tmp_path / "uploads" / "violation-photos"
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (40, 30)
    assert (stored.width, stored.height, stored.content_type) == (40, 30, "image/jpeg")


def test_gps_metadata_does_not_survive(tmp_path):
    image = Image.new("RGB", (20, 20))
    exif = Image.Exif()
    exif[0x8825] = {2: (45.0, 30.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    stored = photos.store_photo(tmp_path, out.getvalue())
    with Image.open(photos.photo_file(tmp_path, stored.stored_name)) as saved:
        assert 0x8825 not in saved.getexif()


@pytest.mark.parametrize(
    "body",
    [b"<?php system($_GET['x']); ?>", b"GIF89a" + b"\x00" * 20, b"%PDF-1.7 not an image", b""],
)
def test_anything_but_a_jpeg_png_or_webp_is_refused(tmp_path, body):
    with pytest.raises(ValidationFailed):
        photos.store_photo(tmp_path, body)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").rglob("*.jpg"))


def test_too_large_files_and_huge_images_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(photos, "MAX_BYTES", 100)
    with pytest.raises(ValidationFailed, match="larger than"):
        photos.store_photo(tmp_path, png())
    monkeypatch.setattr(photos, "MAX_BYTES", 5 * 1024 * 1024)
    monkeypatch.setattr(photos, "MAX_PIXELS", 1000)
    with pytest.raises(ValidationFailed, match="too many pixels"):
        photos.store_photo(tmp_path, png(100, 100))


def test_data_urls_decode_and_names_that_are_not_ours_are_no_path(tmp_path):
    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert photos.decode_data_url(url) == png()
    with pytest.raises(ValidationFailed):
        photos.decode_data_url("data:image/png;base64,@@@")
    assert photos.photo_file(tmp_path, "../../etc/passwd") is None
