"""The partner permit API: pay-and-display machines, HotSpot and other systems record the permits
they sold, and check whether a plate may park.

Partners authenticate with an admin-issued key (``Authorization: Bearer <key>``, see
``dashboard.services.api_keys``): 401 for a missing, unknown or revoked key, 403 for a key without
the call's scope or for a source the key does not act for. Recording is idempotent on (source,
external_id): a partner that retries after a time-out gets the same permit back with 200 instead
of 201. A permit past its lot's allowance or its zone's capacity is refused with 409 (unless the
key holds ``permits:over-allowance``). A key sees only its own sources' permits: the plate check
gives every key the verdict, and lists only the key's own permits. Answers are never cached (they
hold plates), unlike the open-data routes of this blueprint.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

from dashboard.api.blueprint import api, error, unknown_parameters
from dashboard.core import core_of
from dashboard.services import api_keys, permits, throttle
from dashboard.services.api_keys import ApiKeyView, KeyRefused, UnknownKey, WrongScope
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.open_data import iso_utc
from dashboard.services.permits import ExternalPermit, PaidSession, PermitView, SoldOut, SourceNotAllowed
from dashboard.services.plates import normalize_plate

log = logging.getLogger(__name__)
SPACED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # a check's look-back window must stay in the calendar
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
BODY_FIELDS = ("plate", "lot", "zone", "start", "end", "amount_cents", "currency", "source", "external_id")


def permit_json(permit: PermitView) -> dict[str, Any]:
    """A permit as partners see it: no buyer's e-mail or account."""
    return {
        "id": permit.id,
        "number": permit.number,
        "reference": permits.partner_reference(permit),
        "kind": permit.kind,
        "status": permit.status,
        "source": permit.source,
        "external_id": permit.external_id,
        "lot": {"id": permit.lot_id, "name": permit.lot_name} if permit.lot_id is not None else None,
        "zone": permit.zone_name,
        "plates": list(permit.plates),
        "valid_from": iso_utc(permit.valid_from),
        "valid_to": iso_utc(permit.valid_to),
        "amount_cents": permit.amount_cents,
        "currency": permit.currency,
        "over_allowance": permit.over_allowance,
    }


def _session_json(paid: PaidSession) -> dict[str, Any]:
    return {
        "source": paid.source,
        "zone": paid.zone_name,
        "lot_id": paid.lot_id,
        "start": iso_utc(paid.start_at),
        "end": iso_utc(paid.end_at),
    }


def private(response: Response, status: int = 200) -> tuple[Response, int]:
    response.headers["Cache-Control"] = "no-store"
    return response, status


class TooManyInvalidKeys(KeyRefused):
    """This address sent too many unknown keys (``throttle.API_KEY_ADDRESS``): answered 429."""

    def __init__(self, throttled: throttle.Throttled) -> None:
        super().__init__(
            f"too many invalid API keys from this address; try again in {throttled.minutes_text}"
        )
        self.retry_after = throttled.retry_after


def authenticate_key(session: Session, presented: str | None, scope: str) -> ApiKeyView:
    """``api_keys.authenticate`` behind the per-address throttle on unknown keys: a client that
    keeps guessing is refused (429) before any key is looked up, for at most the throttle's window."""
    redis_client = core_of(current_app).redis
    subject = throttle.Subject(throttle.API_KEY_ADDRESS, throttle.client_address(request.remote_addr))
    try:
        attempt = throttle.attempt(redis_client, [subject])
    except throttle.Throttled as exc:
        raise TooManyInvalidKeys(exc) from exc
    try:
        view = api_keys.authenticate(session, presented, scope, now())
    except UnknownKey:
        locked = attempt.failed()
        if locked is not None:
            log.warning(
                "too many unknown API keys from %s: refused for %d minutes",
                request.remote_addr,
                locked.minutes,
            )
        raise
    except (KeyRefused, WrongScope):
        attempt.succeeded()  # not a guess: no key, a revoked key, or a valid key without the scope
        raise
    attempt.succeeded()
    return view


def refused(exc: KeyRefused | WrongScope) -> tuple[Response, int]:
    """401 with a Bearer challenge for a key that does not authenticate; 403 for a missing scope;
    429 with ``Retry-After`` for an address that sent too many unknown keys."""
    if isinstance(exc, TooManyInvalidKeys):
        response, status = error(429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return private(response, status)
    response, status = error(403 if isinstance(exc, WrongScope) else 401, str(exc))
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="parkops"'
    return private(response, status)


def invalid(exc: ValidationFailed) -> tuple[Response, int]:
    return private(*error(422, "the request has invalid fields", fields=exc.errors))


def declined(exc: DomainError) -> tuple[Response, int]:
    """403 for a source the key does not act for; 409 for a full lot or zone (the message says
    which, and that nothing was recorded)."""
    return private(*error(403 if isinstance(exc, SourceNotAllowed) else 409, str(exc)))


def _bearer() -> str | None:
    scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def post_only(blueprint: Blueprint, path: str) -> None:
    """Answer the other methods on a POST-only call with a JSON 405 and its ``Allow`` header;
    without it, the blueprint's GET catch-all would call a GET there "no such resource"."""

    def refuse(**_: object) -> tuple[Response, int]:
        response, status = error(405, "this call takes POST")
        response.headers["Allow"] = "POST"
        return response, status

    blueprint.add_url_rule(
        path,
        endpoint="not-post" + path.replace("/", "-"),
        view_func=refuse,
        methods=["GET", "PUT", "PATCH", "DELETE"],
        provide_automatic_options=False,
    )


post_only(api, "/permits")


@api.post("/permits")
def record_permit() -> tuple[Response, int]:
    core = core_of(current_app)
    body = request.get_json(silent=True)
    with core.db.session() as session:
        try:
            key = authenticate_key(session, _bearer(), "permits:write")
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        if not isinstance(body, dict):
            return private(*error(400, "the body must be a JSON object (Content-Type: application/json)"))
        unknown = sorted(set(body) - set(BODY_FIELDS))
        if unknown:
            return invalid(ValidationFailed(dict.fromkeys(unknown, "not a field of a permit")))
        fields = {name: body[name] for name in BODY_FIELDS if name in body}
        unstorable = unstorable_fields(fields, instants=("start", "end"))
        if unstorable:
            return invalid(ValidationFailed(unstorable))
        fields.setdefault("source", key.partner.default_source("api"))
        fields.setdefault("external_id", None)
        fields.setdefault("plate", None)
        try:
            permit, created = permits.record_external_permit(
                session, ExternalPermit(**fields), partner=key.partner, now=now()
            )
        except ValidationFailed as exc:
            return invalid(exc)
        except (SourceNotAllowed, SoldOut) as exc:
            return declined(exc)
    return private(jsonify(permit_json(permit)), 201 if created else 200)


@api.get("/permits/validate")
def validate_plate() -> tuple[Response, int]:
    """May this plate park in this lot at this moment (default: now), and on what grounds."""
    core = core_of(current_app)
    args = request.args
    with core.db.session() as session:
        try:
            key = authenticate_key(session, _bearer(), "permits:read")
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        errors = unknown_parameters(args, ("plate", "lot", "at")) or unstorable_fields(dict(args))
        if errors:
            return invalid(ValidationFailed(errors))
        plate = args.get("plate") or ""
        if not normalize_plate(plate):
            errors["plate"] = "required: the licence plate"
        at = _moment(args.get("at"), errors)
        lot = permits.lot_by_reference(session, args.get("lot") or "")
        if lot is None:
            errors["lot"] = (
                "no lot has this id, name or code"
                if args.get("lot")
                else "required: a lot's id, name or code"
            )
        if errors:
            return invalid(ValidationFailed(errors))
        assert lot is not None and at is not None
        try:
            check = permits.check_plate(session, plate, lot.id, at, core.settings.tz)
        except ValidationFailed as exc:
            return invalid(exc)
    return private(
        jsonify(
            {
                "plate": check.plate,
                "lot": {"id": check.lot_id, "name": check.lot_name},
                "at": iso_utc(check.at),
                "valid": check.valid,
                "reason": check.reason,
                "permits": [permit_json(p) for p in check.permits if key.partner.owns(p)],
                "sessions": [_session_json(s) for s in check.sessions],
            }
        )
    )


def unstorable_fields(values: dict[str, Any], instants: tuple[str, ...] = ()) -> dict[str, str]:
    """Text no database column can hold (NUL characters: PostgreSQL refuses them) and instants
    that leave the calendar once moved to UTC (year 1 at +01:00): refused here as a 422, where
    further down they would be a 500."""
    errors: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            errors[name] = "must not contain NUL characters"
        elif name in instants and isinstance(value, str) and _overflows(value):
            errors[name] = "out of range"
    return errors


def _overflows(text: str) -> bool:
    try:
        datetime.fromisoformat(text.strip()).astimezone(UTC)
    except ValueError:
        return False  # not a date at all: the service explains the expected format
    except OverflowError:
        return True
    return False


def _moment(text: str | None, errors: dict[str, str]) -> datetime | None:
    """``at`` as ISO-8601 with an offset; a "+" that arrived as a space (an unencoded query
    string) is taken back."""
    if not text:
        return now()
    try:
        moment = datetime.fromisoformat(SPACED_OFFSET.sub(r"+\1", text.strip()))
        at = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        errors["at"] = "an ISO-8601 date and time with its offset, e.g. 2026-11-28T09:30:00-05:00"
        return None
    if moment.utcoffset() is None:
        errors["at"] = "needs a time zone offset (e.g. -05:00 or Z)"
        return None
    if not EARLIEST <= at <= LATEST:
        errors["at"] = f"between {EARLIEST.year} and {LATEST.year - 1}"
        return None
    return at


def now() -> datetime:
    return datetime.now(UTC)
