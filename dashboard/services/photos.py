"""Photos of violations (an officer's evidence) and of appeals (the owner's side).

A photo arrives as bytes from a phone. What it claims to be (its name, its ``data:`` type) is not
trusted: Pillow decodes it, and only a JPEG, PNG or WebP image of sane dimensions is accepted. It is
then re-encoded as a JPEG (turned upright, at most ``MAX_EDGE`` pixels on its long side, without
its metadata: a phone's EXIF carries the GPS position of the officer), which also means a file that
is an image *and* something else (a polyglot) never reaches the disk as it came.

Files go under the instance path (``<instance>/uploads/violation-photos``), outside anything the web
server serves, under a random name; the database keeps that name, and a role-checked route serves
the file to staff.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from dashboard.services.errors import ValidationFailed

MAX_BYTES = 5 * 1024 * 1024  # a phone photo; the request itself is capped at 8 MiB (base64 adds a third)
MAX_PIXELS = 40_000_000
MAX_EDGE = 2000
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}
STORED_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{20,60}\.jpg$")
CONTENT_TYPE = "image/jpeg"
SUBFOLDER = Path("uploads") / "violation-photos"


@dataclass(frozen=True)
class StoredPhoto:
    stored_name: str
    content_type: str
    size_bytes: int
    width: int
    height: int


def photo_folder(instance_path: Path) -> Path:
    return Path(instance_path) / SUBFOLDER


def decode_data_url(contents: object, field: str = "photo") -> bytes:
    """The bytes of a ``data:...;base64,`` URL as ``dcc.Upload`` hands them over."""
    if not isinstance(contents, str) or ";base64," not in contents:
        raise ValidationFailed({field: "the photo did not arrive; choose it again"})
    encoded = contents.split(";base64,", 1)[1]
    if len(encoded) > (MAX_BYTES * 4) // 3 + 4:
        raise ValidationFailed({field: f"larger than {MAX_BYTES // (1024 * 1024)} MB"})
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed({field: "the photo did not arrive whole; choose it again"}) from None


def store_photo(instance_path: Path, data: bytes, field: str = "photo") -> StoredPhoto:
    """Check, re-encode and write one photo; ``ValidationFailed`` names what is wrong with it."""
    if not data:
        raise ValidationFailed({field: "the file is empty"})
    if len(data) > MAX_BYTES:
        raise ValidationFailed({field: f"larger than {MAX_BYTES // (1024 * 1024)} MB"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format
                width, height = probe.size
                if kind not in ACCEPTED_FORMATS:
                    raise ValidationFailed({field: "not a photo: JPEG, PNG or WebP images only"})
                if width * height > MAX_PIXELS:
                    raise ValidationFailed({field: "the image has too many pixels"})
                probe.load()
                image = ImageOps.exif_transpose(probe)
                image = image.convert("RGB")
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):  # fmt: skip
        raise ValidationFailed({field: "not a photo: JPEG, PNG or WebP images only"}) from None
    image.thumbnail((MAX_EDGE, MAX_EDGE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)
    body = out.getvalue()
    folder = photo_folder(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    name = secrets.token_urlsafe(24) + ".jpg"
    (folder / name).write_bytes(body)
    return StoredPhoto(name, CONTENT_TYPE, len(body), image.width, image.height)


def photo_file(instance_path: Path, stored_name: str) -> Path | None:
    """The file of a stored photo, or None (a name that is not one of ours never becomes a path)."""
    if not STORED_NAME_RE.match(stored_name or ""):
        return None
    path = photo_folder(instance_path) / stored_name
    return path if path.is_file() else None


def remove_photo(instance_path: Path, stored_name: str) -> None:
    path = photo_file(instance_path, stored_name)
    if path is not None:
        path.unlink(missing_ok=True)
