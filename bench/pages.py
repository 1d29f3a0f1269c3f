"""Page weight of the user real-time map: the bytes of JavaScript and CSS a visitor's browser loads
for ``/real-time`` and how long the page takes to show its pins, in headless Chromium.

    .venv/bin/python bench/pages.py [--runs 5]

Runs the app in-process on the embedded services with the demo campus, loads the page ``--runs``
times in fresh browser contexts (nothing cached) and prints bytes by resource type (as sent on the
wire, so compressed where the server compresses) and the median time to the first pin.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.app import create_app, prepare_database  # noqa: E402
from dashboard.services import demo  # noqa: E402
from dashboard.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="parkops-bench-pages-"))
    app = create_app(
        Settings(instance_path=instance, secret_key="bench", embedded_mqtt_port=int(os.environ.get("PARKOPS_TEST_MQTT_PORT", "18829")), testing=True)
    )
    core = app.extensions["parkops"]
    prepare_database(core)
    with core.db.session() as session:
        demo.seed_demo(session, core.secrets, instance)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/real-time"

    sizes: dict[str, int] = defaultdict(int)
    timings: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for run in range(args.runs):
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            if run == 0:
                page.on("response", lambda response: _count(response, sizes))
            started = time.perf_counter()
            page.goto(url)
            page.locator("#realtime-map path.leaflet-interactive").first.wait_for(timeout=30_000)
            timings.append(time.perf_counter() - started)
            context.close()
        browser.close()
    server.shutdown()

    print(f"/real-time page weight (first load, nothing cached), {args.runs} loads at 390x844")
    for kind in ("script", "stylesheet", "document", "xhr/fetch", "other"):
        if sizes.get(kind):
            print(f"  {kind:<11} {sizes[kind] / 1024:9.1f} KiB")
    print(f"  JS + CSS    {(sizes['script'] + sizes['stylesheet']) / 1024:9.1f} KiB")
    median_ms, max_ms = statistics.median(timings) * 1000, max(timings) * 1000
    print(f"  time to first pin: median {median_ms:.0f} ms, max {max_ms:.0f} ms")


def _count(response, sizes: dict[str, int]) -> None:  # noqa: ANN001 (playwright Response)
    kind = response.request.resource_type
    kind = (
        "xhr/fetch"
        if kind in ("xhr", "fetch")
        else kind
        if kind in ("script", "stylesheet", "document")
        else "other"
    )
    try:
        sizes[kind] += int(response.headers.get("content-length") or len(response.body()))
    except Exception:  # a response without a body (redirect, aborted): nothing to count
        return


if __name__ == "__main__":
    main()
