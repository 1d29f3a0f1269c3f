"""OC-TOMA-compatible push API (``/api/OC-TOMA/v1``, also ``/api/OC_TOMA/v1``): what pay stations,
meters and apps such as HotSpot already send to parking systems, so they can point at ParkOps
without changes (field names, time format and answers follow OC-TOMA's public description).

* ``POST permits/push``: record a permit (``permitNo`` is the idempotency key: a repeat answers
  the same ``referenceID``). ``POST permits/update``: change plate, amount, currency or end by
  ``referenceID``. ``POST permits/delete``: cancel by ``referenceID`` (OC-TOMA documents that a
  delete call exists but not its path; this is ours). ``POST permits/stats``: permits valid now
  per zone and kind.
* The key travels in the body as ``apiToken`` (an admin-issued key: ``permits:write`` for push,
  update and delete, ``permits:read`` for stats); a ``Bearer`` header is accepted instead. An
  ``apiToken`` that is sent empty is refused (401), whatever the header says.
* A key acts for its sources only: it pushes permits of those sources (a push that names none
  records for the key's only source, else ``paystation``), and updates and deletes only its own
  permits (another partner's ``referenceID`` is "not found"). A push past the lot's allowance or
  the zone's capacity is refused with 409, unless the key holds ``permits:over-allowance``; an
  extension (``endTime`` later than before) counts the added time the same way.
* Field names are matched ignoring case and underscores, with the documented alternatives
  (``LicencePlate``/``plate``, ``CurrencyID``/``currency``, ``endTime``/``EndDateUtc``,
  ``referenceID``/``referenceid``/``reference_id``). Errors name the field as the client spelt it.
* Times are ``Y-m-d\\TH:i:s``: site-local time for ``startTime``/``endTime``, UTC for the
  ``...DateUtc`` spellings (as their name says); an explicit offset (``Z``, ``-05:00``) wins.
* ``Amount`` is a decimal string ("14.50", at most two decimals; optional, 0 when absent);
  ``zone`` must name a lot zone; ``permitNo`` and ``zone`` may come as JSON numbers. Permits are
  recorded with source ``paystation`` unless the body says ``"source": "hotspot"`` (or ``"api"``).
* Answers are JSON: ``{"referenceID": ..., "permit": {...}}``; errors use the API's error shape
  (401 token, 403 scope or source, 404 unknown reference, 409 cancelled permit or full lot or zone,
  422 fields, 400 bad JSON). A refused call leaves nothing behind (its transaction is rolled back).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from dashboard.api.blueprint import error
from dashboard.api.permits import (
    authenticate_key,
    declined,
    invalid,
    now,
    permit_json,
    post_only,
    private,
    refused,
    unstorable_fields,
)
from dashboard.core import core_of
from dashboard.services import permits, user_import
from dashboard.services.api_keys import ApiKeyView, KeyRefused, MissingKey, WrongScope
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import ExternalPermit, PermitChange, PermitView, SoldOut, SourceNotAllowed

oc_toma = Blueprint("oc_toma", __name__, url_prefix="/api/OC-TOMA/v1")

# Canonical field -> accepted spellings, compared lower-cased and without underscores.
SPELLINGS = {
    "token": ("apitoken",),
    "amount": ("amount",),
    "currency": ("currencyid", "currency"),
    "plate": ("licenceplate", "licenseplate", "plate"),
    "zone": ("zone",),
    "zones": ("zones",),
    "permit_no": ("permitno",),
    "start": ("starttime", "startdateutc"),
    "end": ("endtime", "enddateutc"),
    "reference": ("referenceid",),
    "source": ("source",),
}
DOCUMENTED = {  # how errors name a field the client did not send
    "amount": "Amount",
    "currency": "CurrencyID",
    "plate": "LicencePlate",
    "zone": "zone",
    "zones": "zones",
    "permit_no": "permitNo",
    "start": "startTime",
    "end": "endTime",
    "reference": "referenceID",
    "source": "source",
}
SERVICE_FIELDS = {  # the permits service's error keys -> canonical fields
    "plate": "plate",
    "zone": "zone",
    "lot": "zone",
    "start": "start",
    "end": "end",
    "amount_cents": "amount",
    "currency": "currency",
    "external_id": "permit_no",
    "source": "source",
    "referenceID": "reference",
}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$")
TIME_HINT = "Y-m-d\\TH:i:s, e.g. 2018-07-02T09:30:00 (an offset such as -05:00 may follow)"
DEFAULT_SOURCE = "paystation"


class Body:
    """A request body read through the accepted spellings; remembers which spelling was used."""

    def __init__(self, raw: dict[str, Any]) -> None:
        index = {str(key).lower().replace("_", ""): key for key in raw}
        self.raw = raw
        self.used: dict[str, str] = {}
        for field, names in SPELLINGS.items():
            for name in names:
                if name in index:
                    self.used[field] = index[name]
                    break

    def get(self, field: str) -> Any:
        return self.raw[self.used[field]] if field in self.used else None

    def has(self, field: str) -> bool:
        return field in self.used and self.raw[self.used[field]] not in (None, "")

    def name(self, field: str) -> str:
        return self.used.get(field, DOCUMENTED.get(field, field))

    def is_utc(self, field: str) -> bool:
        return self.used.get(field, "").lower().replace("_", "").endswith("utc")

    def errors(self, by_service_key: dict[str, str]) -> ValidationFailed:
        """The service's errors renamed to the client's spelling of each field."""
        named: dict[str, str] = {}
        for key, message in by_service_key.items():
            field = SERVICE_FIELDS.get(key, key)
            named[self.name(field) if field in SPELLINGS else key] = message
        return ValidationFailed(named)


def parse_time(value: object, utc: bool, tz: ZoneInfo) -> datetime:
    """``Y-m-d\\TH:i:s`` in ``tz`` (or UTC), or with an explicit offset; ValueError otherwise."""
    if not isinstance(value, str) or not TIME.match(value.strip()):
        raise ValueError(TIME_HINT)
    text = value.strip()
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if utc else tz)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def parse_amount(value: object) -> int:
    """A decimal amount ("14.50", 14.5) in cents; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a decimal amount such as 14.50")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("a decimal amount such as 14.50") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("a decimal amount, 0 or more, such as 14.50")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError("at most two decimals (whole cents)")
    if cents > permits.MAX_AMOUNT_CENTS:
        raise ValueError("too large for a parking permit")
    return int(cents)


def _times(body: Body, fields: tuple[str, ...], errors: dict[str, str]) -> dict[str, datetime]:
    tz = core_of(current_app).settings.tz
    found: dict[str, datetime] = {}
    for field in fields:
        if not body.has(field):
            continue
        try:
            found[field] = parse_time(body.get(field), body.is_utc(field), tz)
        except ValueError as exc:
            errors[body.name(field)] = str(exc)
    return found


def _answer(permit: PermitView, **extra: Any) -> tuple[Response, int]:
    return private(
        jsonify({"referenceID": permits.partner_reference(permit), **extra, "permit": permit_json(permit)})
    )


def _handle(scope: str, action: Any) -> tuple[Response, int]:
    """Authenticate the body's token (else a Bearer header), run ``action(session, body, key)``,
    turn domain errors into JSON. A refused call is rolled back, whatever it got to."""
    raw = request.get_json(force=True, silent=True)  # some pay stations omit the Content-Type
    if not isinstance(raw, dict):
        return private(*error(400, "the body must be a JSON object (Content-Type: application/json)"))
    body = Body(raw)
    if "token" in body.used:
        token = body.get("token")
        if not isinstance(token, str) or not token.strip():
            return refused(MissingKey(f"{body.name('token')} is empty: send the API key issued in API Keys"))
    else:
        scheme, _, bearer = (request.headers.get("Authorization") or "").partition(" ")
        token = bearer if scheme.lower() == "bearer" else None
    with core_of(current_app).db.session() as session:
        try:
            key = authenticate_key(session, token, scope)
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        unstorable = unstorable_fields(raw)
        if unstorable:
            return invalid(ValidationFailed(unstorable))
        try:
            return action(session, body, key)
        except ValidationFailed as exc:
            session.rollback()
            return invalid(body.errors(exc.errors))
        except NotFound as exc:
            session.rollback()
            return private(*error(404, str(exc)))
        except (SourceNotAllowed, SoldOut) as exc:
            session.rollback()
            return declined(exc)
        except NotAllowed as exc:
            session.rollback()
            return private(*error(409, str(exc)))


post_only(oc_toma, "/permits/push")


@oc_toma.post("/permits/push")
def push() -> tuple[Response, int]:
    return _handle("permits:write", _push)


def _push(session: Any, body: Body, key: ApiKeyView) -> tuple[Response, int]:
    errors: dict[str, str] = {}
    times = _times(body, ("start", "end"), errors)
    for field in ("start", "end", "zone"):
        if not body.has(field):
            errors[body.name(field)] = "required"
    amount = 0
    if body.has("amount"):
        try:
            amount = parse_amount(body.get("amount"))
        except ValueError as exc:
            errors[body.name("amount")] = str(exc)
    source = body.get("source") if body.has("source") else key.partner.default_source(DEFAULT_SOURCE)
    external = ExternalPermit(
        source=source,
        external_id=_text(body.get("permit_no")),
        plate=body.get("plate"),
        zone=_text(body.get("zone")),
        start=times.get("start"),
        end=times.get("end"),
        amount_cents=amount,
        currency=body.get("currency") if body.has("currency") else None,  # None: the site's
    )
    try:
        permit, created = permits.record_external_permit(session, external, partner=key.partner, now=now())
    except ValidationFailed as exc:
        errors = {**body.errors(exc.errors).errors, **errors}
    except SoldOut:
        if not errors:  # an invalid push is answered as invalid, full lot or not
            raise
    if errors:
        raise ValidationFailed(errors)
    return _answer(permit, created=created)


def _text(value: object) -> str | None:
    """Pay stations send permit numbers and numeric zone names ("1001") as text or as JSON numbers."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value)


post_only(oc_toma, "/permits/update")


@oc_toma.post("/permits/update")
def update() -> tuple[Response, int]:
    return _handle("permits:write", _update)


def _update(session: Any, body: Body, key: ApiKeyView) -> tuple[Response, int]:
    errors: dict[str, str] = {}
    if not body.has("reference"):
        errors[body.name("reference")] = "required: the referenceID answered by permits/push"
    times = _times(body, ("end",), errors)
    amount = None
    if body.has("amount"):
        try:
            amount = parse_amount(body.get("amount"))
        except ValueError as exc:
            errors[body.name("amount")] = str(exc)
    change = PermitChange(
        plate=body.get("plate") if body.has("plate") else None,
        end=times.get("end"),
        amount_cents=amount,
        currency=body.get("currency") if body.has("currency") else None,
    )
    if not errors and change == PermitChange():
        errors["permit"] = "nothing to change: send LicencePlate, Amount, currency or endTime"
    if errors:
        raise ValidationFailed(errors)
    try:
        permit = permits.update_external_permit(
            session, body.get("reference"), change, partner=key.partner, now=now()
        )
    except ValidationFailed as exc:
        raise body.errors(exc.errors) from None
    return _answer(permit)


post_only(oc_toma, "/permits/delete")


@oc_toma.post("/permits/delete")
def delete() -> tuple[Response, int]:
    return _handle("permits:write", _delete)


def _delete(session: Any, body: Body, key: ApiKeyView) -> tuple[Response, int]:
    if not body.has("reference"):
        raise ValidationFailed({body.name("reference"): "required: the referenceID answered by permits/push"})
    try:
        permit = permits.cancel_external_permit(session, body.get("reference"), partner=key.partner)
    except ValidationFailed as exc:
        raise body.errors(exc.errors) from None
    return _answer(permit)


post_only(oc_toma, "/permits/stats")


@oc_toma.post("/permits/stats")
def stats() -> tuple[Response, int]:
    return _handle("permits:read", _stats)


def _stats(session: Any, body: Body, _key: ApiKeyView) -> tuple[Response, int]:
    wanted = body.get("zones")
    if isinstance(wanted, str):
        names: list[str] | None = [name for name in wanted.split(",") if name.strip()]
    elif isinstance(wanted, list) and all(isinstance(name, str) for name in wanted):
        names = wanted
    elif wanted is None:
        names = None
    else:
        raise ValidationFailed({body.name("zones"): 'zone names separated by commas, e.g. "Lot 01,Lot 02"'})
    try:
        counts = permits.zone_stats(session, names, now())
    except ValidationFailed as exc:
        raise body.errors(exc.errors) from None
    data = []
    for count in counts:
        data.append({"type": "standard", "zone": count.zone, "total": str(count.standard)})
        data.append({"type": "temp", "zone": count.zone, "total": str(count.temporary)})
    return private(jsonify({"data": data}))


post_only(oc_toma, "/profiles/push")


@oc_toma.post("/profiles/push")
def profiles_push() -> tuple[Response, int]:
    return _handle("users:write", _profiles_push)


def _profiles_push(session: Any, body: Body, _key: ApiKeyView) -> tuple[Response, int]:
    """Create or update one user from a student/HR system. The fields are the managed CSV import's
    attributes under any of their accepted names (``unique_id``/``student_no``/``employ_no``,
    ``phone_cell``...), validated the same way; errors name the field as the client spelt it."""
    fields = {str(key): value for key, value in body.raw.items() if key != body.used.get("token")}
    values, unknown = user_import.values_by_name(fields)
    if unknown:
        raise ValidationFailed(dict.fromkeys(sorted(unknown), "not a field of a profile"))
    wrong = {
        name: "must be text"
        for name, value in fields.items()
        if isinstance(value, bool) or not isinstance(value, str | int | None)
    }
    if wrong:
        raise ValidationFailed(wrong)
    spelt: dict[str, str] = {}
    for name in fields:
        attribute = user_import.attribute_named(name)
        if attribute is not None:
            spelt.setdefault(attribute.key, name)
    try:
        record = user_import.validate_record(values)
        outcome = user_import.upsert(session, record, user_import.user_type_index(session))
    except user_import.InvalidRecord as exc:
        raise ValidationFailed({spelt.get(key, key): text for key, text in exc.problems.items()}) from None
    return private(
        jsonify({"unique_id": record.unique_id, "status": outcome.action, "user_id": outcome.user_id})
    )


@oc_toma.route("/<path:_rest>", methods=["GET", "POST"])
def unknown(_rest: str) -> tuple[Response, int]:
    """A JSON 404 rather than Dash's catch-all page. Only GET and POST: another method on a known
    call must stay Flask's 405 (with its Allow header), not become "no such call"."""
    return error(404, "no such OC-TOMA call")


def register_oc_toma(server: Flask) -> None:
    """Both spellings of the prefix that OC-TOMA clients are configured with."""
    server.register_blueprint(oc_toma)
    server.register_blueprint(oc_toma, url_prefix="/api/OC_TOMA/v1", name="oc_toma_underscore")
