"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the partner and open-data APIs.

Hand-written, because the routes are plain Flask and the contract is what partners code against:
a change here is a change to a promise. ``tests/api/test_openapi_contract.py`` runs schemathesis
against this document and the real app, so the document cannot drift from the routes unnoticed.
The server URL is ``/api``, so the OC-TOMA-compatible calls (``/api/OC-TOMA/v1``) fit in one
document beside ``/api/v1``. The live change stream (server-sent events) is left out: OpenAPI
cannot describe a stream that never ends.

Why this module is long: it is the hand-written OpenAPI document itself (data, not logic): one
promise to partners, kept whole so it reads as the contract it is.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from dashboard.api.blueprint import api
from dashboard.services.user_import import ATTRIBUTES

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(name: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    descriptions = {
        400: "The body is not a JSON object (malformed, or nested more than 64 levels deep).",
        401: "The API key is missing, unknown or revoked.",
        403: "The API key lacks the scope this call needs, or acts for other permit sources.",
        404: "Not found (or another partner's permit).",
        409: "Refused: the lot or zone has no space left for that time (a key with "
        "`permits:over-allowance` records it anyway, flagged), or the permit was cancelled.",
        413: "The body is larger than 8 MiB.",
        422: "Invalid input; `fields` names each bad field.",
        429: "Too many unknown API keys from this address; `Retry-After` says how many seconds to wait.",
    }
    return {str(status): _json(_ref("Error"), descriptions[status]) for status in statuses}


# Every open-data read needs the live figures (Redis).
UNAVAILABLE: Schema = {
    "503": {
        **_json(_ref("Error"), "Live data is unreachable for a moment (Redis is down); try again."),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"},
            }
        },
    }
}


NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
TEXT: Schema = {"type": "string", "minLength": 1}
INSTANT: Schema = {"type": "string", "format": "date-time"}
DAY: Schema = {"type": "string", "format": "date", "example": "2026-11-30"}
OC_TOMA_TIME: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$",
    "description": "Y-m-d\\TH:i:s in the site's time zone (UTC for the ...DateUtc spellings); "
    "an offset may follow.",
    "example": "2018-07-02T09:30:00",
}
AMOUNT: Schema = {
    "type": ["string", "number"],
    "pattern": r"^\d{1,6}(\.\d{1,2})?$",
    "minimum": 0,
    "description": "Decimal, at most two decimals; optional on push (0).",
    "example": "14.50",
}
API_TOKEN: Schema = {
    "type": "string",
    "minLength": 1,
    "description": "An API key issued in API Keys. Without it, the key must come as "
    "`Authorization: Bearer`; sent empty, it is refused (401).",
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every error of every call, the framework's own (405, 413, 500) included.",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "field": {"type": "string", "description": "The bad query parameter."},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Each bad field and what it should be.",
            },
        },
    },
    "PermitInput": {
        "type": "object",
        "description": "A permit sold by another system. Give `lot` (name or code) or `zone` (a lot "
        "zone's name), not both. Recording is idempotent on (`source`, `external_id`). A lot permit "
        "counts against the lot's allowance, a zone permit against the zone's capacity (when set): "
        "past it, 409.",
        "required": ["plate", "start", "end", "external_id"],
        "additionalProperties": False,
        "properties": {
            "plate": {"type": "string", "minLength": 2, "maxLength": 16, "example": "ABC 123"},
            "lot": {"type": "string", "minLength": 1, "maxLength": 120},
            "zone": {"type": "string", "minLength": 1, "maxLength": 80},
            "start": {**INSTANT, "description": "ISO-8601 with its offset."},
            "end": {**INSTANT, "description": "ISO-8601 with its offset; after `start`."},
            "amount_cents": {"type": "integer", "minimum": 0, "maximum": 10_000_000, "default": 0},
            "currency": {
                "type": "string",
                "pattern": "^[A-Za-z]{3}$",
                "description": "Absent: the site's currency (System Settings > General; CAD by default).",
            },
            "source": {
                "type": "string",
                "enum": ["api", "hotspot", "paystation"],
                "description": "One of the key's sources; absent: the key's only source, else `api`.",
            },
            "external_id": {"type": "string", "minLength": 1, "maxLength": 80},
        },
        "oneOf": [
            {"required": ["lot"], "not": {"required": ["zone"]}},
            {"required": ["zone"], "not": {"required": ["lot"]}},
        ],
    },
    "Permit": {
        "type": "object",
        "required": [
            "id",
            "number",
            "reference",
            "over_allowance",
            "kind",
            "status",
            "source",
            "external_id",
            "lot",
            "zone",
            "plates",
            "valid_from",
            "valid_to",
            "amount_cents",
            "currency",
        ],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "reference": {
                **NULLABLE_STRING,
                "format": "uuid",
                "description": "The OC-TOMA referenceID (permits sold by other systems only).",
            },
            "kind": {"type": "string", "enum": ["standard", "temporary"]},
            "status": {"type": "string", "enum": ["pending", "active", "cancelled"]},
            "source": {"type": "string"},
            "external_id": NULLABLE_STRING,
            "lot": {
                "type": ["object", "null"],
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "zone": NULLABLE_STRING,
            "plates": {"type": "array", "items": {"type": "string"}},
            "valid_from": INSTANT,
            "valid_to": INSTANT,
            "amount_cents": {"type": "integer"},
            "currency": {"type": "string"},
            "over_allowance": {
                "type": "boolean",
                "description": "Recorded past the lot's allowance or the zone's capacity "
                "(a key with `permits:over-allowance`).",
            },
        },
    },
    "PaidSession": {
        "type": "object",
        "required": ["source", "zone", "lot_id", "start", "end"],
        "properties": {
            "source": {"type": "string"},
            "zone": NULLABLE_STRING,
            "lot_id": NULLABLE_INT,
            "start": INSTANT,
            "end": INSTANT,
        },
    },
    "PlateCheck": {
        "type": "object",
        "required": ["plate", "lot", "at", "valid", "reason", "permits", "sessions"],
        "properties": {
            "plate": {"type": "string", "description": "Normalised: upper case, no spaces or dashes."},
            "lot": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "at": INSTANT,
            "valid": {"type": "boolean"},
            "reason": {"type": "string"},
            "permits": {"type": "array", "items": _ref("Permit")},
            "sessions": {"type": "array", "items": _ref("PaidSession")},
        },
    },
    "LotFigure": {
        "type": "object",
        "required": ["id", "name", "sold", "allowance", "available", "percent"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "sold": {"type": "integer"},
            "allowance": {"type": "integer"},
            "available": {"type": "integer"},
            "percent": NULLABLE_NUMBER,
            "sells_standard": {"type": "boolean"},
            "sells_temporary": {"type": "boolean"},
        },
    },
    "LotGroup": {
        "type": "object",
        "required": ["id", "name", "status", "stale", "source", "flags", "lots"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "lat": NULLABLE_NUMBER,
            "lon": NULLABLE_NUMBER,
            "color": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "stale", "closed"]},
            "stale": {"type": "boolean"},
            "capacity": NULLABLE_INT,
            "occupied": NULLABLE_INT,
            "available": NULLABLE_INT,
            "percent": NULLABLE_NUMBER,
            "source": {"type": "string"},
            "updated_at": NULLABLE_STRING,
            "flags": {
                "type": "array",
                "items": {"type": "string", "enum": ["over_capacity", "below_zero", "other"]},
                "description": "Why the figure is suspect, empty when it is not: `over_capacity` (the "
                "count is far above the capacity: a drifted counter or a wrong capacity), `below_zero` "
                "(a counter went below zero and was corrected to 0), `other` (flagged for another "
                "reason). The figure is still the one reported. Empty for a closed group. The FIWARE "
                "feed has the same as `statusFlags` (`overCapacity`, `belowZero`, `other`).",
            },
            "lots": {"type": "array", "items": _ref("LotFigure")},
        },
    },
    "OccupancyHistory": {
        "type": "object",
        "required": ["id", "from", "to", "source", "points"],
        "properties": {
            "id": {"type": "integer"},
            "from": INSTANT,
            "to": INSTANT,
            "source": NULLABLE_STRING,
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["recorded_at", "source", "occupied", "capacity", "percent"],
                    "properties": {
                        "recorded_at": INSTANT,
                        "source": {"type": "string"},
                        "occupied": {"type": "integer"},
                        "capacity": {"type": "integer"},
                        "percent": NULLABLE_NUMBER,
                    },
                },
            },
        },
    },
    "OcTomaPush": {
        "type": "object",
        "required": ["permitNo", "LicencePlate", "zone", "startTime", "endTime"],
        "description": "Field names are matched ignoring case and underscores; `LicencePlate` may "
        "be `plate`, `CurrencyID` may be `currency`, `startTime`/`endTime` may be "
        "`StartDateUtc`/`EndDateUtc` (UTC).",
        "properties": {
            "apiToken": API_TOKEN,
            "permitNo": {"type": ["string", "integer"], "minLength": 1, "maxLength": 80},
            "LicencePlate": {"type": "string", "minLength": 2, "maxLength": 16},
            "zone": {"type": ["string", "integer"], "minLength": 1, "description": "A lot zone's name."},
            "startTime": OC_TOMA_TIME,
            "endTime": OC_TOMA_TIME,
            "Amount": AMOUNT,
            "CurrencyID": {
                "type": "string",
                "pattern": "^[A-Za-z]{3}$",
                "description": "Absent: the site's currency (System Settings > General; CAD by default).",
            },
            "source": {
                "type": "string",
                "enum": ["paystation", "hotspot", "api"],
                "description": "One of the key's sources; absent: the key's only source, else `paystation`.",
            },
        },
    },
    "OcTomaUpdate": {
        "type": "object",
        "required": ["referenceID"],
        "description": "`referenceID` may be spelt `referenceid` or `reference_id`; `endTime` may be "
        "`EndDateUtc` (UTC). Send at least one field to change.",
        "properties": {
            "apiToken": API_TOKEN,
            "referenceID": {"type": "string", "format": "uuid"},
            "plate": {"type": "string", "minLength": 2, "maxLength": 16},
            "Amount": AMOUNT,
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            "endTime": OC_TOMA_TIME,
        },
    },
    "OcTomaDelete": {
        "type": "object",
        "required": ["referenceID"],
        "properties": {"apiToken": API_TOKEN, "referenceID": {"type": "string", "format": "uuid"}},
    },
    "OcTomaStatsRequest": {
        "type": "object",
        "properties": {
            "apiToken": API_TOKEN,
            "zones": {
                "type": ["string", "array", "null"],
                "items": {"type": "string"},
                "description": 'Zone names separated by commas ("Lot 01,Lot 02") or as a list; '
                "absent, null or empty: every zone.",
            },
        },
    },
    "OcTomaAnswer": {
        "type": "object",
        "required": ["referenceID", "permit"],
        "properties": {
            "referenceID": {"type": "string", "format": "uuid"},
            "created": {"type": "boolean", "description": "push only: false for a repeated permitNo."},
            "permit": _ref("Permit"),
        },
    },
    "OcTomaStats": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "zone", "total"],
                    "properties": {
                        "type": {"type": "string", "enum": ["standard", "temp"]},
                        "zone": {"type": "string"},
                        "total": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                },
            }
        },
    },
    "SalesReport": {
        "type": "object",
        "description": "Sales made on the days (every permit ever in force, whatever sold it: online, "
        "quick checkout, the office, pay stations, HotSpot, partners, ParkMobile; refunds are not "
        "subtracted). By day, every day has a row per currency sold in the range; other groupings list "
        "the biggest first.",
        "required": ["from", "to", "time_zone", "group_by", "rows", "totals"],
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "time_zone": {"type": "string", "description": "The site's time zone the days are in."},
            "group_by": {"type": "string", "enum": ["day", "lot", "product", "source"]},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "label", "currency", "count", "amount_cents"],
                    "properties": {
                        "key": {
                            "type": "string",
                            "description": "The day (YYYY-MM-DD), `lot-<id>`, `zone-<name>` (a zone "
                            "permit of no single lot), `product-<id>`, `none-<source>` or the source.",
                        },
                        "label": {"type": "string"},
                        "currency": {"type": "string"},
                        "count": {"type": "integer", "minimum": 0},
                        "amount_cents": {"type": "integer"},
                    },
                },
            },
            "totals": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["currency", "count", "amount_cents"],
                    "properties": {
                        "currency": {"type": "string"},
                        "count": {"type": "integer", "minimum": 0},
                        "amount_cents": {"type": "integer"},
                    },
                },
            },
        },
    },
    "Violation": {
        "type": "object",
        "required": [
            "ticket_number",
            "status",
            "plate",
            "lot",
            "issued_at",
            "due_at",
            "total_cents",
            "items",
            "boot",
        ],
        "properties": {
            "ticket_number": {"type": "string", "example": "T-7K3-9QX"},
            "status": {"type": "string", "enum": ["unpaid", "overdue", "under_appeal", "paid", "void"]},
            "plate": {"type": "string"},
            "lot": {
                "type": ["object", "null"],
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
            },
            "issued_at": INSTANT,
            "due_at": {"type": ["string", "null"], "format": "date-time"},
            "total_cents": {
                "type": "integer",
                "description": "What is owed, before any early-payment discount.",
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "kind", "description", "amount_cents"],
                    "properties": {
                        "code": NULLABLE_STRING,
                        "kind": {"type": "string", "enum": ["offence", "late_fee", "reduction"]},
                        "description": {"type": "string"},
                        "amount_cents": {"type": "integer"},
                    },
                },
            },
            "boot": {
                "type": ["object", "null"],
                "description": "The boot put on the car for this ticket (null when none, or boots are off).",
                "required": ["name", "status"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"type": "string", "enum": ["in_use", "released", "returned"]},
                },
            },
        },
    },
    "Boot": {
        "type": "object",
        "required": ["id", "name", "status", "in_service", "ticket_number"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["available", "in_use", "released"]},
            "in_service": {"type": "boolean"},
            "ticket_number": {
                **NULLABLE_STRING,
                "description": "The ticket it is on, while in use or released.",
            },
        },
    },
}


def _user_input() -> Schema:
    """``UserInput`` from the importer's attributes, so the document and the validation agree."""
    properties: Schema = {}
    for attribute in ATTRIBUTES:
        if not attribute.stored:
            continue
        kinds = ["string", "integer"] if attribute.key in ("unique_id", "user_type") else ["string"]
        text: Schema = (
            {"type": "string", "maxLength": attribute.max_length}
            if attribute.max_length
            else {"type": "string"}
        )
        if attribute.required:
            text["minLength"] = 1
        variants = [text] + ([{"type": "integer"}] if "integer" in kinds else [])
        if not attribute.required:
            variants.append({"type": "null"})
        properties[attribute.key] = {
            "anyOf": variants,
            "description": f"{attribute.label}; the CSV import's header names: {', '.join(attribute.names)}.",
        }
    return {
        "type": "object",
        "description": "A user of the institution, created or updated by `unique_id` (an account "
        "with the same e-mail and no unique id yet is adopted). Absent or null optional fields leave "
        "the stored value as it is.",
        "required": ["unique_id", "email"],
        "additionalProperties": False,
        "properties": properties,
    }


def _oc_toma_profile() -> Schema:
    value: Schema = {"type": ["string", "integer", "null"]}
    properties: Schema = {"apiToken": API_TOKEN}
    for attribute in ATTRIBUTES:
        for name in attribute.names:
            kept = "" if attribute.stored else " (accepted, not kept)"
            properties[name] = {**value, "description": f"{attribute.label}{kept}."}
    return {
        "type": "object",
        "description": "One profile from a student or HR system (OC-TOMA `profiles/push`). Each "
        "attribute may come under any of its names (the first non-empty one counts); the unique id "
        "(`unique_id`, `student_no`, `employ_no`...) and `email` are required; lengths as for "
        "`UserInput`.",
        "additionalProperties": False,
        "properties": properties,
    }


USER_RESULT: Schema = {
    "type": "object",
    "required": ["index", "unique_id", "status"],
    "properties": {
        "index": {"type": "integer", "description": "The user's position in `users`."},
        "unique_id": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "updated", "unchanged", "failed"]},
        "user_id": {"type": "integer"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "When failed: each field and what is wrong with it.",
        },
    },
}
SCHEMAS["UserInput"] = _user_input()
SCHEMAS["UserBatch"] = {
    "type": "object",
    "required": ["users"],
    "additionalProperties": False,
    "properties": {"users": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _ref("UserInput")}},
}
SCHEMAS["UserBatchAnswer"] = {
    "type": "object",
    "required": ["created", "updated", "unchanged", "failed", "results"],
    "properties": {
        "created": {"type": "integer"},
        "updated": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "failed": {"type": "integer"},
        "results": {"type": "array", "items": USER_RESULT},
    },
}
SCHEMAS["OcTomaProfile"] = _oc_toma_profile()
SCHEMAS["OcTomaProfileAnswer"] = {
    "type": "object",
    "required": ["unique_id", "status", "user_id"],
    "properties": {
        "unique_id": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "updated", "unchanged"]},
        "user_id": {"type": "integer"},
    },
}

GROUP_ID: Schema = {"name": "group_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _oc_toma(summary: str, scope: str, body: str, answer: str, *statuses: int) -> Schema:
    """The key comes as the body's ``apiToken`` or, instead, as a Bearer header: so the header is
    optional (``{}``), and the body's token is not required by the schema."""
    return {
        "post": {
            "tags": ["OC-TOMA"],
            "summary": summary,
            "security": [{"apiKey": [scope]}, {}],
            "requestBody": _body(body),
            "responses": {"200": _json(_ref(answer), "Done."), **_errors(400, 401, 403, 413, 429, *statuses)},
        }
    }


PATHS: dict[str, Schema] = {
    "/v1/permits": {
        "post": {
            "tags": ["Permits"],
            "summary": "Record a permit sold by another system",
            "security": [{"apiKey": ["permits:write"]}],
            "requestBody": _body("PermitInput"),
            "responses": {
                "201": _json(_ref("Permit"), "Recorded."),
                "200": _json(_ref("Permit"), "Recorded before (same source and external_id): unchanged."),
                **_errors(400, 401, 403, 409, 413, 422, 429),
            },
        }
    },
    "/v1/users": {
        "post": {
            "tags": ["Users"],
            "summary": "Create or update users by their unique id, in batches (the managed CSV import's "
            "attributes and validation)",
            "security": [{"apiKey": ["users:write"]}],
            "requestBody": _body("UserBatch"),
            "responses": {
                "200": _json(
                    _ref("UserBatchAnswer"),
                    "Each user's result; a user that cannot be stored (a bad e-mail address, an unknown "
                    "user type, another account's e-mail) fails alone.",
                ),
                **_errors(400, 401, 403, 413, 422, 429),
            },
        }
    },
    "/v1/permits/validate": {
        "get": {
            "tags": ["Permits"],
            "summary": "May this plate park in this lot now (or at `at`)? Every key gets the verdict; "
            "`permits` lists only the key's own permits.",
            "security": [{"apiKey": ["permits:read"]}],
            "parameters": [
                {"name": "plate", "in": "query", "required": True, "schema": TEXT},
                {
                    "name": "lot",
                    "in": "query",
                    "required": True,
                    "description": "The lot's name, code or id.",
                    "schema": TEXT,
                },
                {"name": "at", "in": "query", "required": False, "schema": INSTANT},
            ],
            "responses": {"200": _json(_ref("PlateCheck"), "The verdict."), **_errors(401, 403, 422, 429)},
        }
    },
    "/v1/violations": {
        "get": {
            "tags": ["Enforcement"],
            "summary": "A plate's violations, newest first",
            "security": [{"apiKey": ["violations:read"]}],
            "parameters": [{"name": "plate", "in": "query", "required": True, "schema": TEXT}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["plate", "violations"],
                        "properties": {
                            "plate": {"type": "string", "description": "Normalised."},
                            "violations": {"type": "array", "items": _ref("Violation")},
                        },
                    },
                    "The violations.",
                ),
                **_errors(401, 403, 422),
            },
        }
    },
    "/v1/boots": {
        "get": {
            "tags": ["Enforcement"],
            "summary": "The boot inventory and where each boot is (never release codes)",
            "security": [{"apiKey": ["violations:read"]}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["boots"],
                        "properties": {"boots": {"type": "array", "items": _ref("Boot")}},
                    },
                    "The boots.",
                ),
                "404": _json(_ref("Error"), "Boot management is turned off (Universal Boot Enabled)."),
                **_errors(401, 403),
            },
        }
    },
    "/v1/reports/sales": {
        "get": {
            "tags": ["Reports"],
            "summary": "Permit sales and revenue over site-local days, by day, lot, product or source "
            "(the Reports page's sales report)",
            "security": [{"apiKey": ["reports:read"]}],
            "parameters": [
                {
                    "name": "from",
                    "in": "query",
                    "required": False,
                    "description": "First site-local day (default: 29 days before `to`).",
                    "schema": DAY,
                },
                {
                    "name": "to",
                    "in": "query",
                    "required": False,
                    "description": "Last site-local day, included (default: today). At most 366 days "
                    "from `from`.",
                    "schema": DAY,
                },
                {
                    "name": "group_by",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["day", "lot", "product", "source"],
                        "default": "day",
                    },
                },
            ],
            "responses": {
                "200": _json(_ref("SalesReport"), "The sales."),
                **_errors(401, 403, 422, 429),
            },
        }
    },
    "/v1/ping": {
        "get": {
            "tags": ["Open data"],
            "summary": "Liveness of the API",
            "security": [],
            "responses": {
                "200": _json(
                    {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}, "Up."
                )
            },
        }
    },
    "/v1/lot-groups": {
        "get": {
            "tags": ["Open data"],
            "summary": "Availability of every lot group shown on the map",
            "security": [],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["lot_groups"],
                        "properties": {"lot_groups": {"type": "array", "items": _ref("LotGroup")}},
                    },
                    "The groups.",
                ),
                "304": {"description": "Not modified (ETag)."},
                **UNAVAILABLE,
            },
        }
    },
    "/v1/lot-groups/{group_id}": {
        "get": {
            "tags": ["Open data"],
            "summary": "One lot group",
            "security": [],
            "parameters": [GROUP_ID],
            "responses": {"200": _json(_ref("LotGroup"), "The group."), **_errors(404), **UNAVAILABLE},
        }
    },
    "/v1/lot-groups/{group_id}/occupancy": {
        "get": {
            "tags": ["Open data"],
            "summary": "A lot group's occupancy history (at most 31 days; default the last 24 hours)",
            "security": [],
            "parameters": [
                GROUP_ID,
                {"name": "from", "in": "query", "schema": INSTANT},
                {"name": "to", "in": "query", "schema": INSTANT},
                {
                    "name": "source",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["mistall", "parking_logix", "devices", "permits"]},
                },
            ],
            "responses": {
                "200": _json(_ref("OccupancyHistory"), "The points."),
                "400": _json(_ref("Error"), "A bad query parameter (`field` names it)."),
                **_errors(404),
                **UNAVAILABLE,
            },
        }
    },
    "/v1/fiware/{entity_type}": {
        "get": {
            "tags": ["Open data"],
            "summary": "FIWARE Smart Data Models entities (key-values)",
            "security": [],
            "parameters": [
                {
                    "name": "entity_type",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["OffStreetParking", "ParkingGroup"]},
                }
            ],
            "responses": {
                "200": _json({"type": "array", "items": {"type": "object"}}, "The entities."),
                "304": {"description": "Not modified (ETag)."},
                **_errors(404),
                **UNAVAILABLE,
            },
        }
    },
    "/OC-TOMA/v1/permits/push": _oc_toma(
        "Record a permit (OC-TOMA)", "permits:write", "OcTomaPush", "OcTomaAnswer", 409, 422
    ),
    "/OC-TOMA/v1/permits/update": _oc_toma(
        "Change a pushed permit (OC-TOMA)", "permits:write", "OcTomaUpdate", "OcTomaAnswer", 404, 409, 422
    ),
    "/OC-TOMA/v1/permits/delete": _oc_toma(
        "Cancel a pushed permit (ParkOps' path for OC-TOMA's delete call)",
        "permits:write",
        "OcTomaDelete",
        "OcTomaAnswer",
        404,
        422,
    ),
    "/OC-TOMA/v1/profiles/push": _oc_toma(
        "Create or update a user from a student/HR system (OC-TOMA; also under /api/OC_TOMA/v1)",
        "users:write",
        "OcTomaProfile",
        "OcTomaProfileAnswer",
        422,
    ),
    "/OC-TOMA/v1/permits/stats": _oc_toma(
        "Permits valid now per zone and kind (OC-TOMA)",
        "permits:read",
        "OcTomaStatsRequest",
        "OcTomaStats",
        422,
    ),
}

DOCUMENT: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "ParkOps API",
        "version": "1.0.0",
        "description": "Open parking data, the partner permit API (Bearer API keys issued by an "
        "administrator under System > API Keys) and the OC-TOMA-compatible push API (key in the "
        "body as `apiToken`). Money is in integer cents; times are UTC ISO-8601 unless noted.",
    },
    "servers": [{"url": "/api"}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer pk_... (scopes: permits:write, permits:read, "
                "permits:over-allowance, violations:read, reports:read, users:write). A key acts for "
                "its permit sources only.",
            }
        },
    },
}


@api.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
