"""Write a Ticket (/officer/ticket), the print view and the PDF over HTTP: an officer writes a Boot
Applied ticket reached from Check a Plate; a retried submit returns the same ticket; the boot
dropdown's order; photos are checked, stored and shown to staff only; the PDF is 72 mm wide and its
QR code opens the payment page."""

from __future__ import annotations

import base64
import io
import json
import uuid

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from models import Role, Violation, ViolationPhoto
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.enforcement import enable_boots, make_place, write_ticket

SUBMIT = "ticket-result.children"


@pytest.fixture
def place(core):
    return make_place(core)


def ticket_values(place, key: str, **more: object) -> dict[str, object]:
    return {
        "ticket-key": key,
        "ticket-lot": place.lot_id,
        "ticket-plate": "abc 123",
        "ticket-offences": [place.nvp, place.boot],
        "ticket-boot": place.boot_ids[0],
        "ticket-notes": "Parked across two spaces",
        "ticket-photos": [],
        **more,
    }


def test_check_a_plate_links_to_the_ticket_with_lot_and_plate(app, login_as, place):
    officer = login_as(Role.OFFICER)
    out = outputs_of(
        dash_post(
            officer,
            app,
            find_output(app, "check-result.children"),
            [1, None],
            ["ABC 123", place.lot_id],
            triggered="check-submit.n_clicks",
        )  # fmt: skip
    )
    assert f"/officer/ticket?lot={place.lot_id}&plate=ABC123" in json.dumps(out)
    page = officer.get(f"/officer/ticket?lot={place.lot_id}&plate=ABC+123")
    assert page.status_code == 200
    loaded = outputs_of(
        dash_post(officer, app, find_output(app, "ticket-lot.options"), [{"lot": str(place.lot_id)}])
    )
    assert loaded["ticket-lot"]["value"] == place.lot_id
    assert "Due in 30 days" in loaded["ticket-due"]["children"]


def test_boot_items_and_the_dropdown_appear_only_with_boots_on(app, login_as, core, place):
    officer = login_as(Role.OFFICER)
    loaded = outputs_of(dash_post(officer, app, find_output(app, "ticket-lot.options"), [{}]))
    assert "BOOT" not in json.dumps(loaded["ticket-offences"]["options"])
    enable_boots(core)
    loaded = outputs_of(dash_post(officer, app, find_output(app, "ticket-lot.options"), [{}]))
    assert "BOOT" in json.dumps(loaded["ticket-offences"]["options"])
    shown = find_output(app, "ticket-boot-row.hidden")
    assert (
        outputs_of(dash_post(officer, app, shown, [[place.nvp]], [None]))["ticket-boot-row"]["hidden"] is True
    )
    write_ticket(core, officer.user.id, place, boot_id=place.boot_ids[1])
    out = outputs_of(dash_post(officer, app, shown, [[place.nvp, place.boot]], [None]))
    assert out["ticket-boot-row"]["hidden"] is False
    options = out["ticket-boot"]["options"]
    assert [(o["value"], bool(o.get("disabled"))) for o in options] == [
        (place.boot_ids[0], False),
        ("heading-1", True),
        (f"taken-{place.boot_ids[1]}", True),
    ]
    assert "Issued" in json.dumps(options[1]["label"])


def test_an_officer_writes_a_boot_applied_ticket_and_a_retry_returns_it(app, login_as, core, place):
    enable_boots(core)
    officer = login_as(Role.OFFICER)
    key = str(uuid.uuid4())
    first = outputs_of(press(officer, app, SUBMIT, "ticket-submit", ticket_values(place, key)))
    text = json.dumps(first["ticket-result"])
    assert "Ticket saved" in text and "Boot applied: Red Boot 01" in text
    assert first["ticket-key"]["data"] != key  # the next ticket gets a new key
    again = json.dumps(outputs_of(press(officer, app, SUBMIT, "ticket-submit", ticket_values(place, key))))
    assert "already saved" in again
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 1
        number = s.scalar(select(Violation.ticket_number))
    assert number in text and number in again
    taken = json.dumps(
        outputs_of(
            press(
                officer,
                app,
                SUBMIT,
                "ticket-submit",
                ticket_values(place, str(uuid.uuid4()), **{"ticket-plate": "XYZ 9"}),
            )
        )
    )
    assert "Red Boot 01 is on another car" in taken


def test_bad_input_is_explained(app, login_as, place):
    officer = login_as(Role.OFFICER)
    values = ticket_values(place, str(uuid.uuid4()), **{"ticket-plate": "", "ticket-offences": []})
    text = json.dumps(outputs_of(press(officer, app, SUBMIT, "ticket-submit", values)))
    assert "Not saved" in text and "enter the licence plate" in text and "choose at least one offence" in text


def jpeg_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def test_photos_are_checked_attached_and_served_to_staff_only(app, login_as, core, place):
    officer = login_as(Role.OFFICER)
    key = str(uuid.uuid4())
    upload = find_output(app, "..ticket-photos.data...ticket-photo-list.children..")
    fake = "data:image/jpeg;base64," + base64.b64encode(b"<script>alert(1)</script>").decode()
    out = outputs_of(
        dash_post(officer, app, upload, [[jpeg_data_url(), fake]], [["car.jpg", "evil.jpg"], key, []])
    )
    kept = out["ticket-photos"]["data"]
    assert [p["name"] for p in kept] == ["car.jpg"]
    assert "evil.jpg: not a photo" in json.dumps(out["ticket-photo-list"])
    values = ticket_values(
        place, key, **{"ticket-offences": [place.nvp], "ticket-boot": None, "ticket-photos": kept}
    )
    outputs_of(press(officer, app, SUBMIT, "ticket-submit", values))
    with core.db.session() as s:
        photo = s.scalar(select(ViolationPhoto))
        assert photo.violation_id is not None and photo.draft_key == key
    served = officer.get(f"/violation-photos/{photo.id}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"] == "private, no-store"
    assert login_as(Role.USER).get(f"/violation-photos/{photo.id}").status_code == 403
    assert login_as(Role.GUEST).get(f"/violation-photos/{photo.id}").status_code == 302


def test_the_print_view_and_the_pdf_carry_the_ticket_and_a_qr_to_the_payment_page(app, login_as, core, place):
    officer = login_as(Role.OFFICER)
    ticket = write_ticket(core, officer.user.id, place, plate="ABC 123")
    assert officer.get(f"/officer/tickets/{ticket.ticket_number}").status_code == 200
    shown = outputs_of(
        dash_post(officer, app, find_output(app, "ticketprint-content.children"), [ticket.ticket_number])
    )
    text = json.dumps(shown)
    url = f"{core.settings.public_url}/pay-violation?ticket={ticket.ticket_number}"
    assert ticket.ticket_number in text and url in text and "ticket-paper" in text
    assert shown["ticketprint-pdf"]["href"] == f"/tickets/{ticket.ticket_number}.pdf"

    response = officer.get(f"/tickets/{ticket.ticket_number}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    document = pypdfium2.PdfDocument(response.data)
    width_pt, _height = document[0].get_size()
    assert abs(width_pt - 72 / 25.4 * 72) < 0.1  # 72 mm
    page_text = document[0].get_textpage().get_text_range()
    assert ticket.ticket_number in page_text and "ABC 123" in page_text and "$50.00 CAD" in page_text
    bitmap = document[0].render(scale=4).to_pil()
    decoded = [code.text for code in zxingcpp.read_barcodes(bitmap)]
    assert decoded == [url]
    assert login_as(Role.USER).get(f"/tickets/{ticket.ticket_number}.pdf").status_code == 403
    assert officer.get("/tickets/T-222-222.pdf").status_code == 404
