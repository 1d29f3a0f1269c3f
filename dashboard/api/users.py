"""``POST /api/v1/users``: the institution's systems create or update users in batches, by their
unique id, with the same attributes and the same validation as the managed CSV import
(``dashboard.services.user_import``).

A key with the ``users:write`` scope (``Authorization: Bearer``). A user that cannot be stored (a
bad e-mail address, an unknown user type, an e-mail of another account) does not refuse the batch:
each one gets its own result (``created``, ``updated``, ``unchanged`` or ``failed`` with the reason
per field), as a CSV file's rows do. A malformed batch is refused whole, nothing stored (400 not
JSON; 422 no ``users`` list, more than ``MAX_BATCH``, or a user that breaks the documented shape),
so a client's bug is not half-applied.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from dashboard.api.blueprint import api, error
from dashboard.api.permits import _bearer, authenticate_key, invalid, post_only, private, refused
from dashboard.core import core_of
from dashboard.services import user_import
from dashboard.services.api_keys import KeyRefused, WrongScope
from dashboard.services.errors import ValidationFailed

SCOPE = "users:write"
MAX_BATCH = 1000
FIELDS = tuple(a.key for a in user_import.ATTRIBUTES if a.stored)
NUMERIC = ("unique_id", "user_type")  # ids that systems may send as JSON numbers


def shape_errors(index: int, item: object) -> dict[str, str]:
    """What makes one user of the batch malformed, exactly as the OpenAPI ``UserInput`` schema
    says (an object, known fields, the required ones, text within its length): a malformed user
    refuses the whole batch, while a well-formed one that cannot be stored fails alone."""
    where = f"users[{index}]"
    if not isinstance(item, dict):
        return {where: "must be an object"}
    errors = {f"{where}.{key}": "not a field of a user" for key in item if key not in FIELDS}
    for attribute in user_import.ATTRIBUTES:
        if not attribute.stored:
            continue
        name = f"{where}.{attribute.key}"
        value = item.get(attribute.key)
        numeric = attribute.key in NUMERIC and isinstance(value, int) and not isinstance(value, bool)
        if attribute.key not in item:
            if attribute.required:
                errors[name] = "required"
        elif value is None and not attribute.required or numeric:
            continue
        elif not isinstance(value, str):
            errors[name] = "must be text" + (" or a whole number" if attribute.key in NUMERIC else "")
        elif attribute.required and not value:
            errors[name] = "required"
        elif attribute.max_length and len(value) > attribute.max_length:
            errors[name] = f"at most {attribute.max_length} characters"
    return errors


def result_of(index: int, item: dict[str, Any], session: Any, types: Any) -> dict[str, Any]:
    """One well-formed user of the batch, upserted, as its result entry."""
    unique_id = str(item["unique_id"]).strip()
    try:
        record = user_import.validate_record(item)
        outcome = user_import.upsert(session, record, types)
    except user_import.InvalidRecord as exc:
        return {"index": index, "unique_id": unique_id, "status": "failed", "errors": exc.problems}
    return {
        "index": index,
        "unique_id": record.unique_id,
        "status": outcome.action,
        "user_id": outcome.user_id,
    }


post_only(api, "/users")


@api.post("/users")
def upsert_users() -> tuple[Response, int]:
    core = core_of(current_app)
    body = request.get_json(silent=True)
    with core.db.session() as session:
        try:
            authenticate_key(session, _bearer(), SCOPE)
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        if not isinstance(body, dict):
            return private(*error(400, "the body must be a JSON object (Content-Type: application/json)"))
        unknown = sorted(set(body) - {"users"})
        if unknown:
            return invalid(ValidationFailed(dict.fromkeys(unknown, "not a field of the batch")))
        batch = body.get("users")
        if not isinstance(batch, list) or not batch:
            return invalid(ValidationFailed({"users": "a list of 1 or more users"}))
        if len(batch) > MAX_BATCH:
            return invalid(ValidationFailed({"users": f"at most {MAX_BATCH} users per call"}))
        malformed = {k: v for i, item in enumerate(batch) for k, v in shape_errors(i, item).items()}
        if malformed:
            return invalid(ValidationFailed(malformed))
        types = user_import.user_type_index(session)
        results = [result_of(index, item, session, types) for index, item in enumerate(batch)]
    counts = {status: 0 for status in ("created", "updated", "unchanged", "failed")}
    for result in results:
        counts[result["status"]] += 1
    return private(jsonify({**counts, "results": results}))
