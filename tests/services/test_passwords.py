"""Password rules: length, not the person's own address or name, not a common/breached password."""

from __future__ import annotations

import pytest

from dashboard.services import passwords


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("short1!", "at least 10"),
        ("x" * 257, "at most 256"),
        ("aaaaaaaaaaaa", "repeated"),
        ("abababababab", "repeated"),
        ("alex.morgan-rules", "e-mail address or your name"),  # the address's local part
        ("I-am-Morgan-2026", "e-mail address or your name"),  # the last name, any case
        ("password1234", "most common"),  # on the list as typed
        ("Qwertyuiop", "most common"),  # case is ignored
        ("Sunshine2026!!", "most common"),  # a listed word with digits and symbols added
        ("1234567890", "most common"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, expected):
    found = passwords.problem(
        password, email="alex.morgan@campus.test", first_name="Alex", last_name="Morgan"
    )
    assert found is not None and expected in found


@pytest.mark.parametrize("password", ["correct-horse-battery", "tram lime orbit 42", "Vq7#mP2z!kLr"])
def test_good_passwords_pass(password):
    assert (
        passwords.problem(password, email="alex.morgan@campus.test", first_name="Alex", last_name="Morgan")
        is None
    )


def test_the_common_list_is_the_shipped_breach_list_and_offline():
    assert passwords.is_common("123456") and passwords.is_common("iloveyou")
    assert not passwords.is_common("tram lime orbit 42")
    # short names inside unrelated words are not refused ("al" in "tram lime orbit")
    assert passwords.problem("tram lime orbit 42", email="al@x.test", first_name="Al", last_name="Li") is None
