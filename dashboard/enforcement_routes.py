"""The enforcement files that are not Dash pages: a ticket's PDF (``/tickets/<number>.pdf``) and
the photos of violations and appeals (``/violation-photos/<id>``).

Neither is a page, so the gate lets them through and each route checks the role itself: staff
(officers and up) only. Photos come from the instance path, never from anything the web server
serves, and are marked private so no shared cache keeps them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Flask, Response, abort, redirect, request, send_file
from flask_login import current_user

from dashboard.auth import has_role
from dashboard.core import core_of
from dashboard.services import boots, photos, system_settings, ticket_pdf, violations
from dashboard.services.errors import NotFound
from models import Role

STAFF = Role.OFFICER


def _refuse() -> Response:
    if not current_user.is_authenticated:
        return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))  # type: ignore[return-value]
    return Response("You do not have access to this file.", status=403, mimetype="text/plain")


def register_enforcement_routes(server: Flask) -> None:
    @server.get("/tickets/<number>.pdf")
    def ticket_pdf_file(number: str) -> Response:
        if not has_role(STAFF):
            return _refuse()
        core = core_of(server)
        with core.db.session() as session:
            try:
                ticket = violations.get_ticket(session, number, datetime.now(UTC))
            except NotFound:
                abort(404)
            site_name = str(system_settings.get(session, core.secrets, "site_name"))
            boots_shown = boots.enabled(session, core.secrets)
            currency = system_settings.currency(session)
        base = core.settings.public_url
        body = ticket_pdf.render(
            ticket,
            site_name=site_name,
            pay_url=violations.pay_url(base, ticket.ticket_number),
            tz=core.settings.tz,
            boots_shown=boots_shown,
            currency=currency,
        )
        response = Response(body, mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="{ticket.ticket_number}.pdf"'
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @server.get("/violation-photos/<int:photo_id>")
    def violation_photo(photo_id: int) -> Response:
        if not has_role(STAFF):
            return _refuse()
        core = core_of(server)
        with core.db.session() as session:
            found = violations.photo_file(session, photo_id)
        path = photos.photo_file(core.settings.instance_path, found.stored_name) if found else None
        if path is None:
            abort(404)
        response = send_file(path, mimetype="image/jpeg", max_age=0)
        response.headers["Cache-Control"] = "private, no-store"
        return response
