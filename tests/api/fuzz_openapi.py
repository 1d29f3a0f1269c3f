"""``make fuzz-api``: the OpenAPI document against the real app with RANDOM examples, many of them.

``test_openapi_contract.py`` runs a fixed (derandomized) set in every test run, so that CI never goes
red by chance; this module draws new examples on each run, a few minutes' worth, to find what the
fixed set never tries (an empty ``apiToken`` beside a valid Bearer header, an empty query parameter).
It is not collected by a plain ``pytest`` run (its name does not start with ``test_``); CI runs it
after the service run, on PostgreSQL, so a finding fails the build. A failure prints the request
that reproduces it (as curl).

Unlike the fixed run, every call carries the Bearer header, as a fuzzer configured with a key does
(but for the negative cases that drop it): the OC-TOMA calls must still judge the body's
``apiToken`` on its own.
``PARKOPS_FUZZ_EXAMPLES`` sets the examples per operation (default 500: about two minutes on an idle
2-core machine with PostgreSQL; five and a half with the machine shared by several test runs).
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings

from dashboard.api.openapi import DOCUMENT
from tests.api.partners import bearer
from tests.api.test_openapi_contract import EXCLUDED_CHECKS, partner_key  # noqa: F401  (a fixture)

EXAMPLES = int(os.environ.get("PARKOPS_FUZZ_EXAMPLES") or 500)

schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_requests_keep_the_documented_promises(case, app, partner_key):  # noqa: F811
    headers = {"Accept-Encoding": "identity"}
    # The key is sent, as a fuzzer configured with one does, unless the case is the negative one
    # that leaves the Authorization header out: that request must then be refused (401), and
    # adding the key back would make its other "violations" (which the server may not see, such
    # as a parameter lost in encoding) look like accepted bad input.
    secured = bool(case.operation.definition.raw.get("security"))
    if not secured or "authorization" in {name.lower() for name in case.headers or {}}:
        headers.update(bearer(partner_key))
    body = case.body if isinstance(case.body, dict) else {}
    if (
        case.operation.path.startswith("/OC-TOMA/")
        and isinstance(body.get("apiToken"), str)
        and body["apiToken"]
    ):
        body["apiToken"] = partner_key  # a token that is itself the invalid part stays
    # ``ignored_auth`` re-sends a request without the key through the operation's own transport,
    # which must reach the app in process too (as in ``test_openapi_contract``).
    case.operation.schema.app = case.operation.app = app
    case.call_and_validate(app=app, headers=headers, excluded_checks=EXCLUDED_CHECKS)
