"""The Reports page over HTTP and called directly: managers only (officers and guests get nothing),
the URL's query string fills the controls and the controls write it back, and the CSV and XLSX
downloads hold the very figures of the page's table."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import openpyxl
import pytest
from flask_login import login_user

from dashboard.auth import SessionUser
from models import Role
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of
from tests.reports_data import FIRST, LAST, SOUTH, make_report_data

SHOW = "reports-table.children"
OPTIONS = "reports-lot.options"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)]


@pytest.fixture
def data(session):
    return make_report_data(session)


def show(client, app, kind="sales", first=FIRST, last=LAST, group_by="day", lot="", source="", group=""):
    return dash_post(client, app, find_output(app, SHOW), [kind, first, last, group_by, lot, source, group])


def texts(node: Any) -> list[str]:
    """Every string in a rendered component tree, in order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        props = node.get("props", node)
        return texts(props.get("children")) if "children" in props else []
    if isinstance(node, list):
        return [text for child in node for text in texts(child)]
    return []


def table_cells(table: Any) -> list[list[str]]:
    """The rendered table as rows of cell texts (head, body, then totals)."""
    sections = table["props"]["children"]
    found = []
    for section in sections:
        rows = section["props"]["children"]
        rows = rows if isinstance(rows, list) else [rows]
        for row in rows:
            found.append([texts(cell["props"]["children"])[0] for cell in row["props"]["children"]])
    return found


def page_table(client, app, **controls) -> tuple[list[list[str]], dict[str, Any]]:
    out = outputs_of(show(client, app, **controls))
    return table_cells(out["reports-table"]["children"]), out


def test_the_page_is_for_managers_and_holds_no_data(login_as, data) -> None:
    assert login_as(Role.GUEST).get("/admin/reports").status_code == 302
    assert login_as(Role.OFFICER).get("/admin/reports").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/reports?report=sales&from=2026-11-02")
    assert page.status_code == 200
    assert b"North Garage" not in page.data and b"12000" not in page.data


def test_the_menu_offers_reports_to_managers() -> None:
    from dashboard.components.shell import MENU

    assert ("Parking", "Reports", "/admin/reports", Role.MANAGER) in MENU


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_get_no_figures_no_choices_and_no_file(app, login_as, data, role, status) -> None:
    client = login_as(role)
    shown = show(client, app)
    assert shown.status_code == status and b"12000" not in shown.data and b"120.00" not in shown.data
    chosen = dash_post(client, app, find_output(app, OPTIONS), [0])
    assert chosen.status_code == status and b"North Garage" not in chosen.data
    for extension in ("csv", "xlsx"):
        got = client.get(f"/admin/reports/export.{extension}?report=sales&from={FIRST}&to={LAST}")
        assert got.status_code == (302 if role is Role.GUEST else 403)
        assert b"North Garage" not in got.data


def test_managers_get_the_choices(app, login_as, data) -> None:
    out = outputs_of(dash_post(login_as(Role.MANAGER), app, find_output(app, OPTIONS), [0]))
    assert [o["label"] for o in out["reports-lot"]["options"]] == ["All lots", SOUTH, "North Garage"]
    assert {"label": "ParkMobile", "value": "parkmobile"} in out["reports-source"]["options"]
    assert [o["label"] for o in out["reports-group"]["options"]] == ["Airport", "North Campus"]
    assert "America/Toronto" in out["reports-tz"]["children"]


def test_sales_by_lot_shows_the_table_and_writes_the_url(app, login_as, data) -> None:
    manager = login_as(Role.MANAGER)
    cells, out = page_table(manager, app, group_by="lot")
    assert cells == [
        ["Lot", "Currency", "Sales", "Amount"],
        ["North Garage", "CAD", "3", "135.00"],
        [SOUTH, "CAD", "3", "7.75"],
        ["Zone Z1 (no single lot)", "CAD", "1", "3.00"],
        ["Total", "CAD", "7", "145.75"],
    ]
    search = out["reports-url"]["search"]
    assert dict(parse_qsl(search[1:])) == {"report": "sales", "from": FIRST, "to": LAST, "group_by": "lot"}
    assert out["reports-csv"]["href"] == "/admin/reports/export.csv" + search
    assert out["reports-summary"]["children"].endswith("CAD 145.75 from 7 sales.")
    assert out["reports-source-box"]["style"] == {} and out["reports-group-box"]["style"] == {
        "display": "none"
    }
    figure = out["reports-chart"]["figure"]
    assert figure["data"][0]["x"] == [3.0, 7.75, 135.0]  # horizontal bars, the biggest on top


def test_empty_days_take_the_default_range_and_bad_input_says_why(app, login_as, data) -> None:
    manager = login_as(Role.MANAGER)
    out = outputs_of(show(manager, app, first="", last=""))
    assert out["reports-to"]["value"] and out["reports-from"]["value"] < out["reports-to"]["value"]
    refused = outputs_of(show(manager, app, first="2026-11-05", last="2026-11-01"))
    assert "the end date is before the start date" in json.dumps(refused["reports-error"]["children"])
    assert "reports-table" not in refused  # the last report stays as it was
    fallback = outputs_of(show(manager, app, kind="violations", group_by="product"))
    assert fallback["reports-group-by"]["value"] == "day"


def test_downloads_hold_the_figures_of_the_page(app, login_as, data) -> None:
    manager = login_as(Role.MANAGER)
    for controls in (
        {"group_by": "lot"},
        {"group_by": "source", "lot": str(data.north)},
        {"kind": "violations"},
        {"kind": "occupancy", "group": str(data.group)},
    ):
        cells, out = page_table(manager, app, **controls)
        csv_file = manager.get(out["reports-csv"]["href"])
        assert csv_file.status_code == 200 and csv_file.mimetype == "text/csv"
        assert "attachment" in csv_file.headers["Content-Disposition"]
        read = list(csv.reader(io.StringIO(csv_file.get_data(as_text=True))))
        # The page shows "—" where the file leaves a cell empty; a formula-like name is quoted.
        shown = [[cell.replace("—", "") for cell in row] for row in cells]
        assert [[cell.removeprefix("'") for cell in row] for row in read] == shown, controls
        assert "'" + SOUTH not in cells[2] and ("'" + SOUTH in read[2]) == (controls == {"group_by": "lot"})
        xlsx_file = manager.get(out["reports-xlsx"]["href"])
        assert xlsx_file.status_code == 200 and xlsx_file.mimetype.endswith("spreadsheetml.sheet")
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx_file.data))["Report"]
        values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=4)]
        assert [
            [_as_text(v, header) for v, header in zip(row, shown[0], strict=True)] for row in values
        ] == shown


def _as_text(value: Any, header: str) -> str:
    """An XLSX cell as the page writes it (money and percents were numbers in the workbook)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if header.endswith("%"):
        return f"{value:.1f}"
    if "amount" in header.lower():
        return f"{value:.2f}"
    return str(value)


def test_a_bad_download_query_is_refused_with_a_reason(login_as, data) -> None:
    manager = login_as(Role.MANAGER)
    bad = manager.get("/admin/reports/export.csv?report=sales&group_by=colour")
    assert bad.status_code == 400 and b"group_by" in bad.data
    assert manager.get("/admin/reports/export.pdf?report=sales").status_code == 404


def test_the_layout_reads_the_url_and_the_callbacks_run_directly(app, core, make_user, data) -> None:
    import dash

    page = dash.page_registry["pages.admin.reports"]
    manager = make_user(Role.MANAGER)
    with app.test_request_context("/admin/reports"):
        login_user(SessionUser(manager.id, manager.email, manager.name, Role.MANAGER))
        built = page["layout"](report="violations", **{"from": FIRST, "to": LAST, "group_by": "lot"})
        found = json.dumps(built.to_plotly_json(), default=lambda o: o.to_plotly_json())
        assert '"value": "violations"' in found and f'"value": "{FIRST}"' in found
        show_fn = callback_entry(app, find_output(app, SHOW))["callback"].__wrapped__
        out = show_fn("violations", FIRST, LAST, "lot", "", "", "")
    assert urlsplit(out[0]).query == f"report=violations&from={FIRST}&to={LAST}&group_by=lot"
    assert out[1] is None and out[2] == "Violations issued, paid and outstanding"
    assert out[5] == "Violations issued by lot, by where they stand now"
    cells = table_cells(
        json.loads(json.dumps(out[10].to_plotly_json(), default=lambda o: o.to_plotly_json()))
    )
    assert cells[1] == ["North Garage", "2", "70.00", "1", "50.00", "0", "1", "20.00"]


def test_the_occupancy_chart_breaks_its_lines_where_no_reading_was_taken(app, login_as, data) -> None:
    out = outputs_of(show(login_as(Role.MANAGER), app, kind="occupancy", group=str(data.group)))
    physical, permits = out["reports-chart"]["figure"]["data"]
    assert physical["x"] == ["2026-11-02T09:00:00", "2026-11-02T10:00:00", "2026-11-03T14:00:00"]
    assert physical["y"] == [50.0, None, 80.0] and permits["y"] == [70.0, None, 75.0]
    heat = out["reports-heat"]["figure"]["data"][0]
    assert heat["z"][0][9] == 50.0 and heat["z"][1][14] == 80.0
    assert out["reports-heat-box"]["style"] == {} and out["reports-group-box"]["style"] == {}
    assert "Mistall" in out["reports-summary"]["children"]
