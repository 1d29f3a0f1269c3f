"""Check a Plate (officers): may this plate park in this lot now, and why.

Phone-first: the lot and the plate, a big answer (valid in green, not valid in red) with the
reason in words (which permit, zone rule or paid session; or why not: expired, another lot, a zone
not scheduled here now, cancelled), then the plate's permits and paid sessions for the record. The
answer comes from ``permits.check_plate``, the same service the validate API uses.

The lot list and the answer arrive through ``Role.OFFICER`` callbacks; the layout holds neither.
The last lot chosen is kept in the browser (``storage_type="local"``), because an officer walks
one lot at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import require_id
from dashboard.services import lots, permits
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.permits import PaidSession, PermitView, PlateCheck
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/officer/check", title="Check a Plate", min_role=Role.OFFICER)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Check a Plate", className="h3"),
            dcc.Store(id="check-lot-memory", storage_type="local"),
            dbc.Form(
                [
                    dbc.Label("Lot", html_for="check-lot"),
                    dcc.Dropdown(id="check-lot", options=[], placeholder="Choose the lot", className="mb-3"),
                    dbc.Label("Licence plate", html_for="check-plate"),
                    dbc.Input(
                        id="check-plate",
                        type="text",
                        autocomplete="off",
                        maxLength=16,
                        className="mb-3 text-uppercase fs-4",
                        placeholder="ABC 123",
                        debounce=True,
                    ),
                    dbc.Button(
                        "Check", id="check-submit", color="primary", size="lg", className="w-100", n_clicks=0
                    ),
                ],
                id="check-form",
            ),
            html.Div(id="check-result", className="mt-3", **{"aria-live": "polite"}),
        ],
        className="officer-check",
        style={"maxWidth": "32rem"},
    )


@callback(
    Output("check-lot", "options"),
    Output("check-lot", "value"),
    Input("check-lot-memory", "modified_timestamp"),
    State("check-lot-memory", "data"),
    min_role=Role.OFFICER,
)
def load_lots(_ts: int | None, remembered: Any) -> tuple[list[dict[str, Any]], Any]:
    """``remembered`` is whatever the browser's storage holds (an older page's value, say): not
    checked here, used only when it is one of the lots offered."""
    with session_scope() as session:
        choices = lots.lot_choices(session)
    options = [{"label": label, "value": lot_id} for lot_id, label in choices]
    known = {lot_id for lot_id, _label in choices}
    # The remembered lot lives in the browser's storage: anything there but a known lot id is ignored.
    return options, remembered if isinstance(remembered, int) and remembered in known else no_update


def _local(moment: datetime) -> str:
    return moment.astimezone(core().settings.tz).strftime("%a %d %b %H:%M")


def _permit_line(permit: PermitView) -> html.Li:
    where = f"zone {permit.zone_name}" if permit.zone_id else (permit.lot_name or "")
    return html.Li(
        [
            html.Strong(permit.number),
            f" {permit.kind} · {where} · {_local(permit.valid_from)} – {_local(permit.valid_to)} · ",
            dbc.Badge(permit.status, color="success" if permit.status == "active" else "secondary"),
            f" · {permit.source}",
        ],
        className="mb-1",
    )


def _session_line(paid: PaidSession) -> html.Li:
    where = f"zone {paid.zone_name}" if paid.zone_name else "this lot"
    return html.Li(
        f"{paid.source} · {where} · {_local(paid.start_at)} – {_local(paid.end_at)}", className="mb-1"
    )


def _answer(check: PlateCheck) -> Any:
    verdict = "VALID" if check.valid else "NOT VALID"
    sections: list[Any] = [
        dbc.Alert(
            [
                html.Div(f"{check.plate} · {check.lot_name}", className="small"),
                html.Div(verdict, className="display-6 fw-bold", id="check-verdict"),
                html.Div(check.reason, id="check-reason"),
                html.Div(f"Checked {_local(check.at)}", className="small mt-1"),
            ],
            color="success" if check.valid else "danger",
            className="mb-3",
        )
    ]
    sections.append(
        dcc.Link(
            "Write a ticket for this plate",
            href="/officer/ticket?" + urlencode({"lot": check.lot_id, "plate": check.plate}),
            className="btn btn-outline-danger w-100 mb-3",
            id="check-write-ticket",
        )
    )
    if check.permits or check.sessions:
        sections.append(html.H2("Valid here now", className="h6"))
        sections.append(
            html.Ul(
                [*map(_permit_line, check.permits), *map(_session_line, check.sessions)],
                className="list-unstyled small",
            )
        )
    if check.elsewhere:
        sections.append(html.H2("Other permits of this plate", className="h6"))
        sections.append(html.Ul([_permit_line(p) for p in check.elsewhere], className="list-unstyled small"))
    return html.Div(sections)


@callback(
    Output("check-result", "children"),
    Output("check-lot-memory", "data"),
    Input("check-submit", "n_clicks"),
    Input("check-plate", "n_submit"),
    State("check-plate", "value"),
    State("check-lot", "value"),
    min_role=Role.OFFICER,
    prevent_initial_call=True,
)
def check(
    _clicks: int | None, _submits: int | None, plate: str | None, chosen: int | None
) -> tuple[Any, Any]:
    if chosen is None:
        return dbc.Alert("Choose the lot first.", color="warning"), no_update
    lot_id = require_id(chosen, "lot")
    try:
        with session_scope() as session:
            answer = permits.check_plate(
                session,
                plate or "",
                lot_id,
                datetime.now(UTC),
                core().settings.tz,
            )
    except ValidationFailed as exc:
        return dbc.Alert(next(iter(exc.errors.values())).capitalize() + ".", color="warning"), no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning"), no_update
    return _answer(answer), lot_id
