"""A local Stripe: the subset of Stripe's API that ``stripe_payments`` uses, on a real HTTP server
(pytest-httpserver), for the real ``stripe`` library to talk to, plus the hosted payment page a
buyer pays on, and webhooks signed the way Stripe signs them.

API (form-encoded bodies, JSON answers, ``Authorization: Bearer <secret key>``, idempotency keys
replayed like Stripe does): ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/<id>``
(``expand[]=payment_intent``), ``POST /v1/checkout/sessions/<id>/expire``, ``POST /v1/refunds``,
``GET /v1/payment_intents/<id>`` (``expand[]=latest_charge``) and ``GET /v1/balance_transactions``
(``created[gte]``/``created[lt]``, ``limit``, ``starting_after``, ``expand[]=data.source``; newest
first, as Stripe lists them): a charge and each refund move the balance, as on Stripe.

The payment page (``GET /pay/<id>``) lists Stripe's test cards; paying (``POST /pay/<id>``) with
4242… succeeds, 4000…0002 is declined (the session stays open: another card may be tried, as on
Stripe), 4000 0027 6000 3184 needs 3-D Secure (a second step, ``POST /pay/<id>/3ds``, approves or
fails it). Tests without a browser do the same with ``pay`` and ``authenticate``.

Every change of state makes the events Stripe would send (``events``); with ``deliver`` set they
are posted at once, signed (``sign``); tests that lose, repeat or reorder them leave ``deliver``
unset and post ``events`` themselves.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SECRET_KEY = "sk_test_parkops_fake"
PUBLISHABLE_KEY = "pk_test_parkops_fake"
WEBHOOK_SECRET = "whsec_parkops_fake"
SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_SECURE_CARD = "4000002760003184"

Deliver = Callable[[bytes, str], Any]


@contextmanager
def stripe_server() -> Iterator[FakeStripe]:
    """A running local Stripe. Threaded: a webhook posted while Stripe answers a request (an
    expired session, a payment on the page) makes ParkOps ask Stripe in turn, as in real life."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield FakeStripe(server)
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _error(status: int, kind: str, message: str, code: str | None = None) -> Response:
    body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
    return Response(json.dumps(body), status=status, content_type="application/json")


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), content_type="application/json")


class FakeStripe:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base = server.url_for("").rstrip("/")
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.balance: list[dict[str, Any]] = []  # balance transactions, oldest first
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str], str | None]] = []  # method, path, form, key
        self.deliver: Deliver | None = None
        self._replays: dict[str, tuple[int, bytes]] = {}
        self._ids = itertools.count(1)
        routes = [
            ("/v1/checkout/sessions", "POST", self._create_session),
            (re.compile(r"^/v1/checkout/sessions/[\w]+$"), "GET", self._retrieve_session),
            (re.compile(r"^/v1/checkout/sessions/[\w]+/expire$"), "POST", self._expire_session),
            ("/v1/refunds", "POST", self._create_refund),
            (re.compile(r"^/v1/payment_intents/[\w]+$"), "GET", self._retrieve_intent),
            ("/v1/balance_transactions", "GET", self._list_balance),
            (re.compile(r"^/pay/[\w]+$"), "GET", self._page),
            (re.compile(r"^/pay/[\w]+$"), "POST", self._page_pay),
            (re.compile(r"^/pay/[\w]+/3ds$"), "POST", self._page_3ds),
        ]
        for uri, method, handler in routes:
            server.expect_request(uri, method=method).respond_with_handler(handler)

    # --- ids, events ---------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):04d}{secrets.token_hex(6)}"

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2026-10-28.endive",
            "data": {"object": copy.deepcopy(obj)},
        }
        self.events.append(event)
        if self.deliver is not None:
            self.post(event)

    def post(
        self, event: dict[str, Any], *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET
    ) -> Any:
        """Post ``event`` to ``deliver``, signed; what ``deliver`` answers."""
        assert self.deliver is not None, "set deliver first"
        payload = json.dumps(event).encode()
        return self.deliver(payload, sign(payload, secret, timestamp))

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    # --- the API ---------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {SECRET_KEY}"

    def _api(self, request: Request, act: Callable[[dict[str, str]], Response]) -> Response:
        if not self._authorised(request):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        form = {k: v for k, v in request.form.items()}
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.path, form, key))
        if key is not None and key in self._replays:
            status, body = self._replays[key]
            return Response(body, status=status, content_type="application/json")
        answer = act(form)
        if key is not None and answer.status_code < 500:
            self._replays[key] = (answer.status_code, answer.get_data())
        return answer

    def _create_session(self, request: Request) -> Response:
        def create(form: dict[str, str]) -> Response:
            amount = int(form["line_items[0][price_data][unit_amount]"]) * int(
                form["line_items[0][quantity]"]
            )
            session_id = self._id("cs")
            self.sessions[session_id] = {
                "id": session_id,
                "object": "checkout.session",
                "mode": form["mode"],
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": amount,
                "currency": form["line_items[0][price_data][currency]"],
                "client_reference_id": form.get("client_reference_id"),
                "customer_email": form.get("customer_email"),
                "metadata": {"parkops_key": form["metadata[parkops_key]"]},
                "payment_intent": None,
                "success_url": form["success_url"],
                "cancel_url": form["cancel_url"],
                "expires_at": int(form["expires_at"]),
                "url": f"{self.base}/pay/{session_id}",
                "_intent_metadata": {"parkops_key": form["payment_intent_data[metadata][parkops_key]"]},
                "_description": form.get("payment_intent_data[description]", ""),
            }
            return _json(self._session_json(session_id, expand=False))

        return self._api(request, create)

    def _session_json(self, session_id: str, *, expand: bool) -> dict[str, Any]:
        body = {k: v for k, v in self.sessions[session_id].items() if not k.startswith("_")}
        intent_id = body["payment_intent"]
        if expand and intent_id is not None:
            body["payment_intent"] = copy.deepcopy(self.intents[intent_id])
        return body

    def _retrieve_session(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        session_id = request.path.rsplit("/", 1)[1]
        self.requests.append(("GET", request.path, {}, None))
        if session_id not in self.sessions:
            return _error(404, "invalid_request_error", f"No such checkout.session: '{session_id}'")
        query = parse_qs(request.query_string.decode())
        expand = any(k.startswith("expand") and "payment_intent" in v for k, v in query.items())
        return _json(self._session_json(session_id, expand=expand))

    def _expire_session(self, request: Request) -> Response:
        session_id = request.path.split("/")[-2]

        def expire(_form: dict[str, str]) -> Response:
            session = self.sessions.get(session_id)
            if session is None:
                return _error(404, "invalid_request_error", f"No such checkout.session: '{session_id}'")
            if session["status"] != "open":
                return _error(
                    400, "invalid_request_error", f"Only open sessions can be expired ({session['status']})."
                )
            self.expire(session_id)
            return _json(self._session_json(session_id, expand=False))

        return self._api(request, expire)

    def _create_refund(self, request: Request) -> Response:
        def refund(form: dict[str, str]) -> Response:
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return _error(400, "invalid_request_error", "This PaymentIntent has no successful charge.")
            amount = int(form.get("amount", intent["amount"] - intent["amount_refunded"]))
            if amount <= 0 or intent["amount_refunded"] + amount > intent["amount"]:
                return _error(
                    400, "invalid_request_error", "Refund amount is greater than unrefunded amount on charge."
                )
            return _json(self.refund_outside(intent["id"], amount))

        return self._api(request, refund)

    def refund_outside(self, intent_id: str, amount: int) -> dict[str, Any]:
        """A refund of ``amount`` (through the API, or as someone would in Stripe's dashboard)."""
        intent = self.intents[intent_id]
        intent["amount_refunded"] += amount
        charge = self.charges[intent["latest_charge"]]
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refund_id = self._id("re")
        self.refunds[refund_id] = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": charge["id"],
            "status": "succeeded",
            "created": int(time.time()),
        }
        self._move("refund", -amount, intent["currency"], refund_id)
        return self.refunds[refund_id]

    def _move(self, kind: str, amount: int, currency: str, source: str, created: int | None = None) -> None:
        self.balance.append(
            {
                "id": self._id("txn"),
                "object": "balance_transaction",
                "type": kind,
                "amount": amount,
                "currency": currency,
                "created": int(time.time()) if created is None else created,
                "source": source,
                "status": "available",
            }
        )

    def _source(self, source_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.charges.get(source_id) or self.refunds[source_id])

    def _retrieve_intent(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        intent_id = request.path.rsplit("/", 1)[1]
        self.requests.append(("GET", request.path, {}, None))
        if intent_id not in self.intents:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{intent_id}'")
        body = copy.deepcopy(self.intents[intent_id])
        query = parse_qs(request.query_string.decode())
        if any(k.startswith("expand") and "latest_charge" in v for k, v in query.items()):
            charge = body.get("latest_charge")
            body["latest_charge"] = self._source(charge) if charge else None
        return _json(body)

    def _list_balance(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        self.requests.append(("GET", request.path, {}, None))
        query = parse_qs(request.query_string.decode())

        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        rows = list(reversed(self.balance))
        if one("created[gte]") is not None:
            rows = [r for r in rows if r["created"] >= int(one("created[gte]") or 0)]
        if one("created[lt]") is not None:
            rows = [r for r in rows if r["created"] < int(one("created[lt]") or 0)]
        after = one("starting_after")
        if after is not None:
            ids = [r["id"] for r in rows]
            rows = rows[ids.index(after) + 1 :] if after in ids else []
        limit = int(one("limit") or 10)
        page, more = rows[:limit], len(rows) > limit
        expand = any(k.startswith("expand") and "data.source" in v for k, v in query.items())
        data = [dict(r, source=self._source(r["source"])) if expand else dict(r) for r in page]
        return _json({"object": "list", "url": "/v1/balance_transactions", "has_more": more, "data": data})

    def charge_outside(self, amount: int, currency: str = "cad", key: str | None = None) -> str:
        """A charge made on Stripe outside any ParkOps checkout (a payment link, the dashboard);
        ``key`` puts a ParkOps idempotency key in its metadata. The payment intent's id."""
        intent_id = self._id("pi")
        self.intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "amount_refunded": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "metadata": {"parkops_key": key} if key else {},
            "description": "",
            "last_payment_error": None,
            "latest_charge": None,
        }
        self._charge(self.intents[intent_id])
        return intent_id

    def _charge(self, intent: dict[str, Any]) -> None:
        charge_id = self._id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "refunded": False,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "created": int(time.time()),
        }
        intent.update(status="succeeded", latest_charge=charge_id, amount_received=intent["amount"])
        self._move("charge", intent["amount"], intent["currency"], charge_id)

    # --- what happens on the payment page --------------------------------------------------------

    def _intent(self, session: dict[str, Any]) -> dict[str, Any]:
        if session["payment_intent"] is None:
            intent_id = self._id("pi")
            self.intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": 0,
                "amount_refunded": 0,
                "currency": session["currency"],
                "status": "requires_payment_method",
                "metadata": dict(session["_intent_metadata"]),
                "description": session["_description"],
                "last_payment_error": None,
                "latest_charge": None,
            }
            session["payment_intent"] = intent_id
        return self.intents[session["payment_intent"]]

    def _public(self, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def _succeed(self, session: dict[str, Any], intent: dict[str, Any]) -> None:
        intent.update(last_payment_error=None)
        self._charge(intent)
        session.update(status="complete", payment_status="paid")
        self._event("payment_intent.succeeded", intent)
        self._event("checkout.session.completed", self._public(session))

    def _fail(self, session: dict[str, Any], intent: dict[str, Any], code: str, message: str) -> None:
        intent.update(
            status="requires_payment_method",
            last_payment_error={"type": "card_error", "code": code, "message": message},
        )
        self._event("payment_intent.payment_failed", intent)

    def pay(self, session_id: str, card: str) -> str:
        """The buyer pays on the session's page with ``card``: "paid", "declined" or "3ds"."""
        session = self.sessions[session_id]
        if session["status"] != "open":
            return session["status"]
        intent = self._intent(session)
        if card == SUCCESS_CARD:
            self._succeed(session, intent)
            return "paid"
        if card == THREE_D_SECURE_CARD:
            intent.update(status="requires_action", last_payment_error=None)
            return "3ds"
        self._fail(session, intent, "card_declined", "Your card was declined.")
        return "declined"

    def authenticate(self, session_id: str, approve: bool) -> str:
        """The bank's 3-D Secure step: approved pays, refused fails like a decline."""
        session = self.sessions[session_id]
        intent = self._intent(session)
        if session["status"] != "open" or intent["status"] != "requires_action":
            return session["status"]
        if approve:
            self._succeed(session, intent)
            return "paid"
        self._fail(
            session,
            intent,
            "payment_intent_authentication_failure",
            "We are unable to authenticate your payment method.",
        )
        return "declined"

    def expire(self, session_id: str) -> None:
        """The session closes (its time ran out, or it was expired through the API)."""
        session = self.sessions[session_id]
        session["status"] = "expired"
        self._event("checkout.session.expired", self._public(session))

    def only_session(self) -> str:
        assert len(self.sessions) == 1, self.sessions
        return next(iter(self.sessions))

    # --- the page in a browser -------------------------------------------------------------------

    def _render(self, session_id: str, note: str = "", three_d_secure: bool = False) -> Response:
        session = self.sessions[session_id]
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        if three_d_secure:
            body = (
                f"<h1>Authenticate your payment</h1><form method='post' action='/pay/{session_id}/3ds'>"
                "<button name='outcome' value='approve' id='fake-3ds-approve'>"
                "Complete authentication</button>"
                "<button name='outcome' value='fail' id='fake-3ds-fail'>Fail authentication</button></form>"
            )
        else:
            options = "".join(
                f"<option value='{n}'>{n}</option>"
                for n in (SUCCESS_CARD, DECLINED_CARD, THREE_D_SECURE_CARD)
            )
            body = (
                f"<h1>Pay {html.escape(amount)}</h1><p id='fake-note'>{html.escape(note)}</p>"
                f"<form method='post' action='/pay/{session_id}'><label for='card'>Card</label>"
                f"<select id='fake-card' name='card'>{options}</select>"
                "<button id='fake-pay'>Pay</button></form>"
                f"<a id='fake-back' href='{html.escape(session['cancel_url'])}'>Back</a>"
            )
        return Response(f"<!doctype html><html><body>{body}</body></html>", content_type="text/html")

    def _page(self, request: Request) -> Response:
        session_id = request.path.rsplit("/", 1)[1]
        if session_id not in self.sessions or self.sessions[session_id]["status"] != "open":
            return Response("This payment page has closed.", status=404)
        return self._render(session_id)

    def _after(self, session_id: str, outcome: str) -> Response:
        session = self.sessions[session_id]
        if outcome == "paid":
            return Response(status=303, headers={"Location": session["success_url"]})
        if outcome == "3ds":
            return self._render(session_id, three_d_secure=True)
        intent = self.intents[session["payment_intent"]]
        return self._render(session_id, note=intent["last_payment_error"]["message"])

    def _page_pay(self, request: Request) -> Response:
        session_id = request.path.rsplit("/", 1)[1]
        return self._after(session_id, self.pay(session_id, request.form["card"]))

    def _page_3ds(self, request: Request) -> Response:
        session_id = request.path.split("/")[-2]
        return self._after(session_id, self.authenticate(session_id, request.form["outcome"] == "approve"))
