"""The issue's "done when": an admin opens System Task Logs, presses RUN, and a log row appears
(written by the in-process worker, as under ``parkops run``)."""

import threading

import pytest
from playwright.sync_api import Page, expect

from dashboard.app import prepare_database
from models import Role
from tests.browser.signing import sign_in
from workers.worker import start_inprocess_worker

pytestmark = pytest.mark.browser


@pytest.fixture
def running_worker(core):
    stop = threading.Event()
    thread = start_inprocess_worker(core, stop)
    yield
    stop.set()
    thread.join(timeout=10)


def test_admin_runs_a_task_and_sees_it_logged(page: Page, live_server, make_user, core, running_worker):
    prepare_database(core)
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/tasks")
    row = page.locator("#tasks-table-grid tr", has_text="Update Mistall System Job Task")
    expect(row).to_be_visible()
    row.get_by_role("button", name="RUN").click()
    expect(page.locator("#tasks-flash")).to_contain_text("queued", ignore_case=True)
    log_row = page.locator("#tasks-log-grid tr", has_text="Update Mistall System Job Task")
    expect(log_row.first).to_contain_text("not configured", ignore_case=True, timeout=20_000)
