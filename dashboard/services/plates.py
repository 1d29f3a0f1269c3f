"""Licence plates as officers, pay stations and forms write them.

A plate is matched on its normalised form: upper case, without spaces, dashes or dots, so
"abc-123", "ABC 123" and "A.B.C 123" are one car. Forms keep what the driver typed (``plate``)
beside the normalised form (``plate_normalized``), because a receipt should read as entered.
"""

from __future__ import annotations

import re

from dashboard.services.errors import ValidationFailed

_SEPARATORS = re.compile(r"[\s.\-]+")
_PLATE = re.compile(r"^[A-Z0-9]{2,10}$")
MAX_TYPED = 16  # the column's size: room for separators around the 10 characters


def normalize_plate(plate: str) -> str:
    return _SEPARATORS.sub("", plate or "").upper()


def clean_plate(plate: object, field: str = "plate") -> tuple[str, str]:
    """``(as typed, trimmed; normalised)``, or ``ValidationFailed`` naming ``field``: 2 to 10
    letters and digits once spaces, dashes and dots are removed (North American plates have at
    most 8; the margin is for other countries' and dealer plates)."""
    typed = plate.strip() if isinstance(plate, str) else ""
    normalized = normalize_plate(typed)
    if not typed:
        raise ValidationFailed({field: "enter the licence plate"})
    if len(typed) > MAX_TYPED or not _PLATE.match(normalized):
        raise ValidationFailed({field: "2 to 10 letters and digits (spaces and dashes are ignored)"})
    return typed.upper(), normalized
