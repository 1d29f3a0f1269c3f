"""Appeal a Ticket (/appeal) over HTTP, as a guest: ticket + plate + text + photo."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image
from sqlalchemy import select

from dashboard.services import email
from models import Appeal, OutboxMessage, Role, ViolationPhoto
from tests.dash_helpers import outputs_of, press
from tests.enforcement import make_place, write_ticket


def test_a_guest_appeals_a_ticket_with_a_photo(app, login_as, core, make_user):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    ticket = write_ticket(core, make_user(Role.OFFICER).id, make_place(core), plate="ABC 123")
    guest = login_as(Role.GUEST)
    assert guest.get(f"/appeal?ticket={ticket.ticket_number}").status_code == 200
    picture = io.BytesIO()
    Image.new("RGB", (20, 20)).save(picture, format="PNG")
    values = {
        "appeal-ticket": ticket.ticket_number,
        "appeal-plate": "abc123",
        "appeal-email": "guest@example.com",
        "appeal-text": "The sign was covered by snow.",
        "appeal-photo": "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode(),
    }
    wrong = json.dumps(outputs_of(press(guest, app, "appeal-result.children", "appeal-submit",
                                        {**values, "appeal-plate": "XYZ 1"})))  # fmt: skip
    assert "No ticket matches" in wrong
    done = outputs_of(press(guest, app, "appeal-result.children", "appeal-submit", values))
    assert "was received" in json.dumps(done["appeal-result"]) and done["appeal-form"]["style"] == {
        "display": "none"
    }
    with core.db.session() as s:
        appeal = s.scalar(select(Appeal))
        assert appeal.email == "guest@example.com"
        assert s.scalar(select(ViolationPhoto.appeal_id)) == appeal.id
        assert s.scalar(select(OutboxMessage.template_key)) == "appeal-received"
