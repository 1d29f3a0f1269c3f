"""Write a Ticket (officers, on a phone): lot, plate, offence items, notes, photos, and the boot when
an Apply Boot item is chosen; the officer's own recent tickets below.

Check a Plate links here with the lot and the plate filled in (``?lot=<id>&plate=<plate>``).

A slow connection is expected. Each form shown gets a key (``ticket-key``, from a callback); the
submit sends it, and the service returns the ticket already written under it, so tapping Submit
again after a time-out never makes a second ticket. The key changes only once a ticket came back.
Photos upload one by one as they are chosen (each its own request, checked and stored at once), so
the submit itself stays small.

The Apply Boot dropdown lists available boots first, then "Released" and "Issued" boots under those
headings, greyed out (``boots.boot_choices``); the server refuses a boot that is not available,
also when two officers pick the same one at the same moment. With Universal Boot off, Apply Boot
items and the dropdown are not offered at all.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update
from typing_extensions import TypedDict  # pydantic reads typing's own only from Python 3.12

from dashboard.callbacks import callback, register_page
from dashboard.components.enforcement import (
    boots_on,
    field_errors,
    money,
    setting,
    short_when,
    violation_badge,
    when,
)
from dashboard.inputs import require_id
from dashboard.services import boots, lots, offences, photos, violations
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.violations import TicketDraft
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/officer/ticket", title="Write a Ticket", min_role=Role.OFFICER)


class AttachedPhoto(TypedDict):
    """A photo already stored for this form (``ticket-photos``), as the submit sends it back."""

    id: int
    name: str


LABELS = {
    "lot": "Lot",
    "plate": "Plate",
    "offences": "Offences",
    "boot": "Apply Boot",
    "notes": "Notes",
    "photos": "Photos",
    "photo": "Photo",
    "form": "Form",
}


def layout(lot: str | None = None, plate: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Write a Ticket", className="h3"),
            dcc.Store(id="ticket-init", data={"lot": lot, "plate": plate}),
            dcc.Store(id="ticket-key"),
            dcc.Store(id="ticket-photos", data=[]),
            dbc.Form(
                [
                    dbc.Label("Lot", html_for="ticket-lot"),
                    dcc.Dropdown(id="ticket-lot", options=[], placeholder="Choose the lot", className="mb-3"),
                    dbc.Label("Licence plate", html_for="ticket-plate"),
                    dbc.Input(
                        id="ticket-plate",
                        type="text",
                        autocomplete="off",
                        maxLength=16,
                        className="mb-3 text-uppercase fs-4",
                        placeholder="ABC 123",
                        value=plate or "",
                    ),
                    dbc.Label("Offences", html_for="ticket-offences"),
                    dbc.Checklist(
                        id="ticket-offences",
                        options=[],
                        value=[],
                        className="mb-3 ticket-offences",
                        inputClassName="me-2",
                        labelClassName="py-1",
                    ),
                    html.Div(
                        [
                            dbc.Label("Apply Boot", html_for="ticket-boot"),
                            dcc.Dropdown(
                                id="ticket-boot",
                                options=[],
                                placeholder="Choose the boot applied",
                                searchable=False,
                                className="mb-1",
                            ),
                            dbc.FormText(
                                "Available boots first; released and issued boots cannot be chosen."
                            ),
                        ],
                        id="ticket-boot-row",
                        className="mb-3",
                        hidden=True,
                    ),
                    dbc.Label("Notes", html_for="ticket-notes"),
                    dbc.Textarea(id="ticket-notes", maxLength=2000, rows=3, className="mb-3"),
                    dbc.Label("Photos", html_for="ticket-upload"),
                    dcc.Upload(
                        id="ticket-upload",
                        children=html.Div("Add photos (camera or gallery)", className="py-3"),
                        accept="image/jpeg,image/png,image/webp",
                        multiple=True,
                        max_size=photos.MAX_BYTES,
                        className="ticket-upload mb-1 text-center border rounded",
                    ),
                    html.Div(id="ticket-photo-list", className="small mb-3", role="status"),
                    html.Div(id="ticket-due", className="small text-muted mb-2"),
                    dbc.Button(
                        "Save ticket",
                        id="ticket-submit",
                        color="primary",
                        size="lg",
                        className="w-100",
                        n_clicks=0,
                    ),
                ],
                id="ticket-form",
            ),
            html.Div(id="ticket-result", className="mt-3", **{"aria-live": "polite"}),
            html.H2("My recent tickets", className="h5 mt-4"),
            html.Div(id="ticket-recent"),
        ],
        className="officer-ticket",
        style={"maxWidth": "32rem"},
    )


def _offence_options(types: list[offences.OffenceTypeView], with_boot: bool) -> list[dict[str, Any]]:
    return [
        {"label": f"{t.code} · {t.name} — {money(t.fine_cents)}", "value": t.id}
        for t in types
        if with_boot or not t.apply_boot
    ]


def _recent(officer_id: int | None) -> Any:
    if officer_id is None:
        return None
    now = datetime.now(UTC)
    with session_scope() as session:
        tickets = violations.recent_for_officer(session, officer_id, now)
    if not tickets:
        return html.P("No tickets yet.", className="text-muted small")
    return html.Ul(
        [
            html.Li(
                [
                    dcc.Link(
                        t.ticket_number, href=f"/officer/tickets/{t.ticket_number}", className="fw-semibold"
                    ),
                    f" · {t.plate} · {t.lot_name or ''} · {money(t.total_cents)} · ",
                    violation_badge(t.shown_status),
                    html.Div(short_when(t.issued_at), className="text-muted"),
                ],
                className="mb-2",
            )
            for t in tickets
        ],
        className="list-unstyled small",
        id="ticket-recent-list",
    )


@callback(
    Output("ticket-lot", "options"),
    Output("ticket-lot", "value"),
    Output("ticket-offences", "options"),
    Output("ticket-key", "data"),
    Output("ticket-due", "children"),
    Output("ticket-recent", "children"),
    Input("ticket-init", "data"),
    min_role=Role.OFFICER,
)
def load(init: dict[str, str | None] | None) -> tuple[Any, ...]:
    """``init`` holds the address's ``lot`` and ``plate`` (Check a Plate's link), as text."""
    with_boot = boots_on()
    with session_scope() as session:
        choices = lots.lot_choices(session)
        types = offences.list_offence_types(session, active_only=True)
    wanted = str((init or {}).get("lot") or "")
    chosen = next((lot_id for lot_id, _label in choices if str(lot_id) == wanted), None)
    return (
        [{"label": label, "value": lot_id} for lot_id, label in choices],
        chosen,
        _offence_options(types, with_boot),
        str(uuid.uuid4()),
        _due_text(),
        _recent(current_user_id()),
    )


def _due_text() -> str:
    days = int(setting("violation_due_days"))
    return f"Due in {days} days: {when(datetime.now(UTC) + timedelta(days=days), with_time=False)}."


def boot_options() -> list[dict[str, Any]]:
    with session_scope() as session:
        choices = boots.boot_choices(session)
    options: list[dict[str, Any]] = []
    for n, choice in enumerate(choices):
        if choice.boot_id is None:
            options.append({"label": html.Strong(choice.label), "value": f"heading-{n}", "disabled": True})
        elif choice.selectable:
            options.append({"label": choice.label, "value": choice.boot_id})
        else:
            options.append(
                {"label": f"   {choice.label}", "value": f"taken-{choice.boot_id}", "disabled": True}
            )
    return options


@callback(
    Output("ticket-boot-row", "hidden"),
    Output("ticket-boot", "options"),
    Output("ticket-boot", "value"),
    Input("ticket-offences", "value"),
    State("ticket-boot", "value"),
    min_role=Role.OFFICER,
)
def show_boot(chosen: list[int] | None, current: int | None) -> tuple[bool, Any, Any]:
    """The Apply Boot dropdown appears only with an Apply Boot item (and boots on)."""
    ids = chosen or []
    if not ids or not boots_on():
        return True, [], None
    with session_scope() as session:
        booting = any(t.apply_boot for t in offences.list_offence_types(session) if t.id in ids)
    if not booting:
        return True, [], None
    options = boot_options()
    keep = current if any(o["value"] == current and not o.get("disabled") for o in options) else None
    return False, options, keep


@callback(
    Output("ticket-photos", "data"),
    Output("ticket-photo-list", "children"),
    Input("ticket-upload", "contents"),
    State("ticket-upload", "filename"),
    State("ticket-key", "data"),
    State("ticket-photos", "data"),
    min_role=Role.OFFICER,
    prevent_initial_call=True,
)
def add_photos(
    contents: str | list[str] | None,
    names: str | list[str] | None,
    key: str | None,
    current: list[AttachedPhoto] | None,
) -> tuple[Any, Any]:
    """Each chosen photo is checked and stored at once; a refused one is named with the reason."""
    kept = list(current or [])
    problems: list[str] = []
    files = contents if isinstance(contents, list) else [contents]
    labels = names if isinstance(names, list) else [names] * len(files)
    for data, name in zip(files, labels, strict=False):
        label = str(name or "photo")[:80]
        try:
            stored = photos.store_photo(core().settings.instance_path, photos.decode_data_url(data))
            with session_scope() as session:
                photo_id = violations.add_draft_photo(
                    session, submit_key=key or "", officer_id=int(current_user_id() or 0), stored=stored,
                    now=datetime.now(UTC),
                )  # fmt: skip
            kept.append(AttachedPhoto(id=photo_id, name=label))
        except ValidationFailed as exc:
            problems.append(f"{label}: {next(iter(exc.errors.values()))}")
    return kept, _photo_list(kept, problems)


def _photo_list(kept: list[AttachedPhoto], problems: list[str] | None = None) -> Any:
    parts: list[Any] = []
    if kept:
        parts.append(html.Div(f"{len(kept)} photo(s) attached: " + ", ".join(p["name"] for p in kept)))
    for problem in problems or []:
        parts.append(html.Div(f"Not attached: {problem}", className="text-danger"))
    return parts


@callback(
    Output("ticket-result", "children"),
    Output("ticket-key", "data", allow_duplicate=True),
    Output("ticket-plate", "value"),
    Output("ticket-offences", "value"),
    Output("ticket-notes", "value"),
    Output("ticket-photos", "data", allow_duplicate=True),
    Output("ticket-photo-list", "children", allow_duplicate=True),
    Output("ticket-recent", "children", allow_duplicate=True),
    Output("ticket-boot", "options", allow_duplicate=True),
    Input("ticket-submit", "n_clicks"),
    State("ticket-key", "data"),
    State("ticket-lot", "value"),
    State("ticket-plate", "value"),
    State("ticket-offences", "value"),
    State("ticket-boot", "value"),
    State("ticket-notes", "value"),
    State("ticket-photos", "data"),
    min_role=Role.OFFICER,
    prevent_initial_call=True,
    running=[(Output("ticket-submit", "disabled"), True, False)],
)
def submit(
    _clicks: int | None,
    key: str | None,
    lot_id: int | None,
    plate: str | None,
    chosen: list[int] | None,
    boot_id: int | None,
    notes: str | None,
    attached: list[AttachedPhoto] | None,
) -> tuple[Any, ...]:
    """The lot, offence, boot and photo ids are the ones the page was given: any other did not
    come from it."""
    unchanged = (no_update,) * 8
    if ctx.triggered_id != "ticket-submit":
        return (no_update, *unchanged)
    officer_id = current_user_id()
    assert officer_id is not None  # the role check ran
    draft = TicketDraft(
        submit_key=key or "",
        officer_id=officer_id,
        lot_id=None if lot_id is None else require_id(lot_id, "lot"),
        plate=plate or "",
        offence_type_ids=[require_id(i, "offence") for i in chosen or []],
        notes=notes or "",
        boot_id=None if boot_id is None else require_id(boot_id, "boot"),
        photo_ids=[require_id(p["id"], "photo") for p in attached or []],
    )
    try:
        with session_scope() as session:
            issued = violations.issue_ticket(
                session,
                draft,
                datetime.now(UTC),
                due_days=int(setting("violation_due_days")),
                boots_enabled=boots_on(),
            )
    except boots.BootInUse as exc:
        return (dbc.Alert(str(exc), color="danger"), *unchanged[:7], boot_options())
    except ValidationFailed as exc:
        return (field_errors(exc.errors, LABELS), *unchanged)
    except DomainError as exc:
        return (dbc.Alert(str(exc), color="danger"), *unchanged)
    ticket = issued.ticket
    heading = "Ticket saved" if issued.created else "This ticket was already saved"
    result = dbc.Alert(
        [
            html.Div(heading, className="small"),
            html.Div(ticket.ticket_number, className="display-6 fw-bold", id="ticket-number"),
            html.Div(
                f"{ticket.plate} · {money(ticket.total_cents)} · due {when(ticket.due_at, with_time=False)}"
            ),
            *(
                [html.Div(f"Boot applied: {ticket.boots[0].boot_name}", id="ticket-boot-applied")]
                if ticket.boots
                else []
            ),
            html.Div(
                [
                    dcc.Link(
                        "Print view",
                        href=f"/officer/tickets/{ticket.ticket_number}",
                        className="btn btn-primary btn-sm me-2",
                        id="ticket-print-link",
                    ),
                    html.A(
                        "PDF",
                        href=f"/tickets/{ticket.ticket_number}.pdf",
                        className="btn btn-outline-primary btn-sm",
                    ),
                ],
                className="mt-2",
            ),
        ],
        color="success",
    )
    return result, str(uuid.uuid4()), "", [], "", [], None, _recent(officer_id), no_update
