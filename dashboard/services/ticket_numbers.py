"""Ticket numbers: drawing a new one and reading one back as a person typed it.

They read well aloud and on paper: ``T-`` and six characters from an alphabet without 0/O, 1/I/L,
or U (``T-7K3-9QX``), about 730 million of them, drawn at random and checked. A module of its own
because tickets are written both by an officer (``violations.issue_ticket``) and by the boot
non-return task (``boots.flag_non_returned``), and the Boot Device Report searches by them: it
imports only the models, so neither of those modules has to import the other for it.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Violation

TICKET_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
TICKET_RE = re.compile(r"^T-[2-9A-HJKMNP-TV-Z]{3}-[2-9A-HJKMNP-TV-Z]{3}$")
TICKET_SEARCH_MAX = 32  # the column's size


def new_ticket_number() -> str:
    chars = "".join(secrets.choice(TICKET_ALPHABET) for _ in range(6))
    return f"T-{chars[:3]}-{chars[3:]}"


def clean_ticket_number(text: object) -> str:
    """What a person typed ("t 7k3 9qx", "T-7K3-9QX") in the printed form; other spellings (the
    demo's ``DEMO-V-0001``) are only trimmed and upper-cased."""
    raw = str(text or "").strip().upper()
    compact = re.sub(r"[\s-]+", "", raw)
    if len(compact) == 7 and compact.startswith("T"):
        candidate = f"T-{compact[1:4]}-{compact[4:]}"
        if TICKET_RE.match(candidate):
            return candidate
    return raw[:32]


def new_unused_number(session: Session) -> str:
    for _ in range(20):
        number = new_ticket_number()
        if session.scalar(select(Violation.id).where(Violation.ticket_number == number)) is None:
            return number
    raise RuntimeError("no free ticket number found in 20 draws")  # 1 in 10^170 with a sane table
