"""Partner reads of enforcement data: a plate's violations and the boots (``violations:read``).

For systems that hold cars back until tickets are paid (a gate, a campus card office) and for
boot inventory dashboards. Keys as in ``dashboard.api.permits``: 401 without a valid key, 403
without the scope. Never a release code. With Universal Boot off, ``/boots`` answers 404 and a
violation's ``boot`` is null: the feature does not exist then.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from dashboard.api.blueprint import api, error, unknown_parameters
from dashboard.api.permits import _bearer, invalid, now, private, refused, unstorable_fields
from dashboard.core import core_of
from dashboard.services import api_keys, boots, violations
from dashboard.services.api_keys import KeyRefused, WrongScope
from dashboard.services.errors import ValidationFailed
from dashboard.services.open_data import iso_utc
from dashboard.services.plates import normalize_plate
from dashboard.services.violations import TicketView

SCOPE = "violations:read"


def _violation_json(ticket: TicketView, boots_shown: bool) -> dict[str, Any]:
    boot = ticket.boots[-1] if boots_shown and ticket.boots else None
    return {
        "ticket_number": ticket.ticket_number,
        "status": ticket.shown_status,
        "plate": ticket.plate,
        "lot": {"id": ticket.lot_id, "name": ticket.lot_name} if ticket.lot_id is not None else None,
        "issued_at": iso_utc(ticket.issued_at),
        "due_at": iso_utc(ticket.due_at) if ticket.due_at else None,
        "total_cents": ticket.total_cents,
        "items": [
            {
                "code": item.code,
                "kind": item.kind,
                "description": item.description,
                "amount_cents": item.amount_cents,
            }
            for item in ticket.items
        ],
        "boot": {"name": boot.boot_name, "status": boot.status} if boot else None,
    }


@api.get("/violations")
def plate_violations() -> tuple[Response, int]:
    core = core_of(current_app)
    with core.db.session() as session:
        try:
            api_keys.authenticate(session, _bearer(), SCOPE, now())
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        errors = unknown_parameters(request.args, ("plate",)) or unstorable_fields(dict(request.args))
        plate = request.args.get("plate") or ""
        if not errors and not normalize_plate(plate):
            errors["plate"] = "required: the licence plate"
        elif not errors and len(normalize_plate(plate)) > 16:
            errors["plate"] = "at most 16 characters"
        if errors:
            return invalid(ValidationFailed(errors))
        found = violations.for_plate(session, plate, now())
        boots_shown = boots.enabled(session, core.secrets)
    body = {"plate": normalize_plate(plate), "violations": [_violation_json(t, boots_shown) for t in found]}
    return private(jsonify(body))


@api.get("/boots")
def boot_list() -> tuple[Response, int]:
    core = core_of(current_app)
    with core.db.session() as session:
        try:
            api_keys.authenticate(session, _bearer(), SCOPE, now())
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        if not boots.enabled(session, core.secrets):
            return private(*error(404, "boot management is turned off"))
        rows = boots.list_boots(session, core.secrets)
    return private(
        jsonify(
            {
                "boots": [
                    {
                        "id": b.id,
                        "name": b.name,
                        "status": b.status,
                        "in_service": b.is_active,
                        "ticket_number": b.ticket_number,
                    }
                    for b in rows
                ]
            }
        )
    )
