"""The Payment Reconciliation task end to end (``execute_task``, as the worker runs it): on by
default, daily at 03:30 in the site's zone; a run lists the sandbox's disagreements, says what it
compared in its log line, forgets old webhook events, and a second run lists nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from dashboard.services import system_tasks
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SandboxProvider
from models import PaymentMismatch, ProcessorEvent, TaskOutcome
from workers.jobs import execute_task
from workers.tasks import REGISTRY

TASK = "payment-reconciliation"


def test_it_is_a_daily_task_on_by_default():
    definition = REGISTRY.get(TASK).definition
    assert definition.title == "Payment Reconciliation" and definition.default_enabled
    assert definition.default_schedule == "30 3 * * *"


def test_a_run_lists_a_stray_charge_once_and_forgets_old_events(core):
    SandboxProvider(core.db).charge(
        amount_cents=2500,
        currency="CAD",
        card=Card("4242424242424242", 12, 2099, "123"),
        idempotency_key="nobody-asked",
        description="outside",
    )
    with core.db.session() as s:
        s.add(
            ProcessorEvent(
                provider="stripe",
                event_id="evt_ancient",
                event_type="checkout.session.completed",
                received_at=datetime.now(UTC) - timedelta(days=40),
            )
        )
    first = execute_task(core, TASK, "test")
    assert first.outcome == TaskOutcome.SUCCESS.value
    assert first.message == (
        "Sandbox: 1 charges compared, 1 mismatches (1 new); 1 webhook events older than 30 days forgotten"
    )
    second = execute_task(core, TASK, "test")
    assert second.message.startswith("Sandbox: 1 charges compared, 1 mismatches (0 new)")
    with core.db.session() as s:
        assert s.scalar(select(func.count(PaymentMismatch.id))) == 1
        assert s.scalar(select(func.count(ProcessorEvent.id))) == 0
        task = system_tasks.get_task(s, TASK)
        assert task.enabled and task.schedule_words == "daily at 03:30"


def test_stripe_chosen_without_keys_makes_the_run_partly_failed(core):
    from dashboard.services import system_settings

    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"payment_processor": "stripe"}, actor_id=None)
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.PARTLY_FAILED.value
    assert "Stripe: not checked (Stripe needs its secret key" in run.message
