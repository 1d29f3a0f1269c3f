"""Password rules for local accounts: long enough, not the person's own e-mail or name, and not a
password that attackers try first.

The common-password list is the 30,000 most frequent passwords of public breach corpora that the
``zxcvbn`` package (Dropbox's strength estimator, maintained on PyPI) ships inside itself, so the
check works offline and sends nothing anywhere. A password is refused when it is on that list, or
is a listed password with digits and punctuation added at the ends ("Summer2026!" is "summer"):
that is the first variation a guesser's tools try.
"""

from __future__ import annotations

import re
from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 10
# scrypt hashes whatever it is given: a cap stops a megabyte "password" costing the server.
MAX_LENGTH = 256
# A name or address part shorter than this is too common inside unrelated passwords ("al", "li").
_MIN_PART = 3
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    """On the breached/common list, as typed or with its leading and trailing digits and symbols
    removed (case is ignored: the list is lower case)."""
    folded = password.casefold()
    core = _DECORATION.sub("", folded)
    return folded in _common() or (len(core) >= _MIN_PART and core in _common())


def problem(password: str, *, email: str = "", first_name: str = "", last_name: str = "") -> str | None:
    """What is wrong with ``password`` for this person, in words for the form; None if it is fine."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    folded = password.casefold()
    if len(set(folded)) <= 2:
        return "must not be one or two characters repeated"
    address = email.strip().casefold()
    local_part = address.split("@", 1)[0]
    own = [address, local_part, first_name.strip().casefold(), last_name.strip().casefold()]
    if any(len(part) >= _MIN_PART and part in folded for part in own):
        return "must not contain your e-mail address or your name"
    if is_common(password):
        return "is one of the most common passwords (found in breached-password lists); choose another"
    return None
