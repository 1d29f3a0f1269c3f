"""The system tasks (Tools > View System Task Logs): names, defaults and bodies, registered in code.

Code owns *which* tasks exist and what they do; the ``system_tasks`` table owns what admins change
(enabled, interval) and the schedule. ``dashboard.services.system_tasks.sync_registry`` reconciles
the two. A body receives a ``TaskContext`` and returns a ``TaskResult``; ``workers.jobs`` wraps
every call in a lock and records the run.

A body that cannot run yet (a switch off, a credential missing, an integration not written) raises
``TaskNotConfigured``: the run log then says exactly what is missing instead of pretending the task
succeeded. Vendor clients live in their own modules (``workers.mistall``, ``workers.parking_logix``);
the bodies here only connect them to the settings, the database and the occupancy model.

Why this module is long: it is the registry of every system task (name, defaults, body) in code;
each body is short and calls a service, and the registry is meant to be read as one list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError
from dashboard.services import (
    boots,
    occupancy,
    pay_stations,
    payments,
    peoplesoft,
    reconciliation,
    system_settings,
    user_import,
    waitlist,
)
from models import LotGroup, MistallLot, OccupancySource, PermitSource, TaskOutcome, TaskRun, utcnow
from workers import email_delivery, parkmobile, sftp_pull
from workers.mistall import MistallClient, MistallLotReading
from workers.parking_logix import LotCount, ParkingLogixClient, ParkingLogixError, quoted

if TYPE_CHECKING:
    from dashboard.core import Core


class TaskNotConfigured(Exception):
    """The task cannot run until something is set up; ``str()`` says what, for the run log.

    A state rather than a fault, so runs record it as ``not_configured``, not ``failed``."""


class UnknownTask(LookupError):
    """No task of that name is registered (a stale job, a typo, or a tampered page request)."""


@dataclass(frozen=True)
class TaskDefinition:
    """What code declares about a task; the database row starts from these defaults."""

    name: str
    title: str
    default_interval_seconds: int
    description: str
    default_enabled: bool = False
    default_schedule: str | None = None  # fixed times in the site's time zone, else every interval


@dataclass(frozen=True)
class TaskResult:
    """What a run did. ``partly_failed``: some of the work failed while the rest was done (the
    message says which); the run is recorded ``partly_failed`` rather than ``success``, so the task
    log and the task health widget show it."""

    rows_touched: int
    message: str
    partly_failed: bool = False


@dataclass(frozen=True)
class TaskContext:
    """What a body may use. Bodies open their own short sessions so a long import can commit in
    batches, and a failure rolls back only the batch in progress."""

    core: Core
    logger: logging.Logger

    def session(self) -> AbstractContextManager[Session]:
        return self.core.db.session()


TaskBody = Callable[[TaskContext], TaskResult]


@dataclass(frozen=True)
class RegisteredTask:
    definition: TaskDefinition
    body: TaskBody


class TaskRegistry:
    """Named task bodies with their definitions, in registration order (the order admins see)."""

    def __init__(self) -> None:
        self._tasks: dict[str, RegisteredTask] = {}

    def task(
        self,
        name: str,
        *,
        title: str,
        interval_seconds: int,
        description: str,
        default_enabled: bool = False,
        schedule: str | None = None,
    ) -> Callable[[TaskBody], TaskBody]:
        """Decorator registering a body under ``name``; a duplicate name is a programming error.
        ``schedule``: run at these fixed times (``dashboard.services.schedules``) rather than every
        ``interval_seconds`` (which stays the interval an admin gets on switching back)."""
        definition = TaskDefinition(name, title, interval_seconds, description, default_enabled, schedule)

        def register(body: TaskBody) -> TaskBody:
            if name in self._tasks:
                raise ValueError(f"task {name!r} is already registered")
            self._tasks[name] = RegisteredTask(definition, body)
            return body

        return register

    def definitions(self) -> list[TaskDefinition]:
        return [registered.definition for registered in self._tasks.values()]

    def names(self) -> list[str]:
        return list(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def get(self, name: str) -> RegisteredTask:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}") from None


REGISTRY = TaskRegistry()
THIRD_PARTY_HINT = "System Settings > Third Party"
# Seconds between the two looks at a dropped file that tell a complete file from one still being
# written (its size or modification time changed).
IMPORT_SETTLE_SECONDS = 2.0
# A file on the SFTP server modified more recently than this is left for the next run (an upload
# that pauses longer than the two looks apart).
SFTP_MIN_AGE_SECONDS = 30.0
MISTALL_SETTINGS = ("mistall_enabled", "mistall_api_url", "mistall_username", "mistall_password")


@REGISTRY.task(
    "update-mistall",
    title="Update Mistall System Job Task",
    interval_seconds=600,
    description="Imports lot occupancy counts from the Mistall parking guidance system.",
)
def update_mistall(ctx: TaskContext) -> TaskResult:
    """Import every Mistall lot (this fills the Mistall Lot ID dropdown) and give each lot group
    with a Mistall lot its count. ``rows_touched``: Mistall lots written plus lot groups updated."""
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, MISTALL_SETTINGS)
    if not config["mistall_enabled"]:
        raise TaskNotConfigured(f"Enable Mistall Usage is off ({THIRD_PARTY_HINT})")
    _require(config, ("mistall_api_url", "mistall_username", "mistall_password"))

    with MistallClient(
        str(config["mistall_api_url"]), str(config["mistall_username"]), str(config["mistall_password"])
    ) as client:
        readings = client.fetch_lots()
    now = utcnow()
    by_id = {reading.mistall_id: reading for reading in readings}
    updated: list[str] = []
    missing: list[str] = []
    no_count: list[str] = []
    with ctx.session() as session:
        _upsert_mistall_lots(session, by_id.values(), now)
        policy = occupancy.load_policy(session, ctx.core.secrets)
        store = occupancy.LiveStore(ctx.core.redis)
        groups = session.scalars(
            select(LotGroup)
            .where(LotGroup.mistall_lot_id.is_not(None), LotGroup.mistall_lot_id != "")
            .order_by(LotGroup.name)
        ).all()
        for group in groups:
            reading = by_id.get(str(group.mistall_lot_id))
            if reading is None:
                missing.append(f"{group.name} ({group.mistall_lot_id})")
            elif reading.occupied is None or reading.capacity is None:
                no_count.append(group.name)
            else:
                _apply(
                    session,
                    store,
                    policy,
                    group.id,
                    OccupancySource.MISTALL,
                    reading.occupied,
                    reading.capacity,
                    _observed_at(reading.updated_at, now),
                )
                updated.append(group.name)
        claimed = {group.mistall_lot_id for group in groups}
    unassociated = sorted(r.name for r in by_id.values() if r.mistall_id not in claimed)
    parts = [f"{len(by_id)} Mistall lots imported", f"{len(updated)} lot groups updated"]
    parts += _listed("unassociated", unassociated)
    parts += _listed("Mistall lot not in Mistall's answer", missing)
    parts += _listed("Mistall sent no count for", no_count)
    return TaskResult(rows_touched=len(by_id) + len(updated), message="; ".join(parts))


@REGISTRY.task(
    "fetch-parkmobile",
    title="Fetch ParkMobile Stats",
    interval_seconds=180,
    description=(
        "Fetches ParkMobile permits and stores them as temporary permits for lot zones of the same name."
    ),
)
def fetch_parkmobile(ctx: TaskContext) -> TaskResult:
    """Import the ParkMobile permits that changed since the last successful run (minus an overlap,
    ``workers.parkmobile.since``) as temporary permits of zones with the same name
    (``pay_stations.import_records``: their lot, limits and flags).

    Permits of unknown zones and malformed entries are skipped, counted and named in the message
    (malformed ones are logged in full too); a run where every entry was malformed fails, because
    that means ParkMobile's format changed. ``rows_touched``: records created plus records updated."""
    keys = ("parkmobile_username", "parkmobile_password", "parkmobile_api_key", "parkmobile_base_url")
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, keys)
        last_success = session.scalar(
            select(func.max(TaskRun.started_at)).where(
                TaskRun.task_name == "fetch-parkmobile", TaskRun.outcome == TaskOutcome.SUCCESS
            )
        )
    _require(config, keys)

    now = utcnow()
    updated_since = parkmobile.since(last_success, now)
    with parkmobile.ParkMobileClient(
        str(config["parkmobile_base_url"]),
        str(config["parkmobile_username"]),
        str(config["parkmobile_password"]),
        str(config["parkmobile_api_key"]),
    ) as client:
        batch = client.permits(updated_since)
    for entry in batch.rejected:
        ctx.logger.warning("ParkMobile %s skipped (%s): %r", entry.ref, entry.reason, entry.raw)
    records = [
        pay_stations.IncomingRecord(
            p.permit_id, p.plate, p.zone, p.start_at, p.end_at, p.amount_cents, p.currency, p.raw
        )
        for p in batch.permits
    ]
    with ctx.session() as session:
        result = pay_stations.import_records(
            session, PermitSource.PARKMOBILE.value, records, now, ctx.core.settings.tz
        )

    malformed = [f"{e.ref} ({e.reason})" for e in batch.rejected]
    malformed += [f"{ref} ({reason})" for ref, reason in result.rejected]
    received = len(batch.permits) + len(batch.rejected)

    def first(items: list[str], limit: int = 20) -> list[str]:
        return items[:limit] + ([f"and {len(items) - limit} more"] if len(items) > limit else [])

    if received and len(malformed) == received:
        raise parkmobile.ParkMobileError(
            f"every one of the {received} ParkMobile permits was malformed, nothing was imported "
            f"(ParkMobile's format may have changed): {'; '.join(first(malformed))}"
        )
    parts = [
        f"{received} ParkMobile permits changed since {updated_since:%Y-%m-%d %H:%M} UTC",
        f"{result.created} imported, {result.updated} updated, {result.unchanged} unchanged",
    ]
    zones = [f"{zone} ({count})" for zone, count in result.skipped_zones]
    parts += _listed(f"{result.skipped} skipped, no lot zone of that name", first(zones))
    full = [f"{zone} ({count})" for zone, count in result.over_capacity]
    over = sum(count for _zone, count in result.over_capacity)
    parts += _listed(f"{over} imported past their lot's allowance or zone's capacity, flagged", full)
    parts += _listed(f"{len(malformed)} malformed, skipped", first(malformed))
    return TaskResult(rows_touched=result.rows_touched, message="; ".join(parts))


@REGISTRY.task(
    "parking-logix-sync",
    title="Parking Logix Sync",
    interval_seconds=300,
    description=(
        "Reads lot counts from Parking Logix for lot groups that hold an API key and a Parking Logix name."
    ),
)
def parking_logix_sync(ctx: TaskContext) -> TaskResult:
    """Give each lot group with a Parking Logix key and name the count of the lot whose
    ``location_name`` equals that name exactly, as stored (the seed's rule: no fuzzy matching that
    could show one lot's count on another's pin; the lot group editor keeps spaces for that reason).

    Groups sharing a key cost one call per run. The message reports each key on its own line (its
    groups updated, its names without a lot, or its error) and the lots no group claims, each once;
    names are ``quoted`` so a stray space shows. A failing key (an error status, HTTP 200 with
    ``"status": "ERROR"``, an unreadable stored key) does not stop the others, but the run is
    ``partly_failed``; it is ``failed`` when no key worked."""
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, ("parking_logix_enabled", "parking_logix_base_url"))
        if not config["parking_logix_enabled"]:
            raise TaskNotConfigured(f"Enable Parking Logix Integration is off ({THIRD_PARTY_HINT})")
        by_key, unreadable = _parking_logix_groups(session, ctx.core.secrets)
    if not by_key:
        if unreadable:
            raise TaskNotConfigured(
                f"The Parking Logix API keys of {', '.join(g.name for g in unreadable)} cannot be read with "
                "the current secret key: enter them again on Manage Parking Lot Groups"
            )
        raise TaskNotConfigured(
            "No lot group has both a Parking Logix API key and a Parking Logix name "
            "(Manage Parking Lot Groups)"
        )

    answers: list[_KeyAnswer] = []
    with ParkingLogixClient(str(config["parking_logix_base_url"])) as client:
        for key, members in by_key.items():
            try:
                answers.append(_KeyAnswer(members, lots=client.lots(key)))
            except ParkingLogixError as exc:
                answers.append(_KeyAnswer(members, error=str(exc)))
    unreadable_lines = [
        f"API key of {group.name} cannot be read with the current secret key, enter it again"
        for group in unreadable
    ]
    if all(answer.lots is None for answer in answers):
        failures = [f"{answer.label}: {answer.error}" for answer in answers]
        raise ParkingLogixError("every Parking Logix call failed: " + "; ".join(failures + unreadable_lines))

    now = utcnow()
    # Which keys see each lot, to tell "no such lot" from "that lot is under another key".
    seen_by: dict[str, list[str]] = {}
    for answer in answers:
        for lot in answer.lots or []:
            seen_by.setdefault(lot.location_name, []).append(answer.label)
    updated = 0
    lines: list[str] = []
    with ctx.session() as session:
        policy = occupancy.load_policy(session, ctx.core.secrets)
        store = occupancy.LiveStore(ctx.core.redis)
        for answer in answers:
            if answer.lots is None:
                lines.append(f"{answer.label}: FAILED: {answer.error}")
                continue
            by_name = {lot.location_name: lot for lot in answer.lots}
            missing: list[str] = []
            for member in answer.members:
                counted = by_name.get(member.logix_name)
                if counted is None:
                    elsewhere = seen_by.get(member.logix_name)
                    hint = f" (only the {' and the '.join(elsewhere)} sees it)" if elsewhere else ""
                    missing.append(f"{quoted(member.logix_name)} for {member.name}{hint}")
                    continue
                _apply(
                    session,
                    store,
                    policy,
                    member.id,
                    OccupancySource.PARKING_LOGIX,
                    counted.occupied,
                    counted.total_spaces,
                    _observed_at(counted.updated_at, now),
                )
                updated += 1
            done = len(answer.members) - len(missing)
            parts = [f"{done} of {len(answer.members)} lot groups updated"]
            parts += _listed("no Parking Logix lot of that exact name", missing)
            lines.append(f"{answer.label}: " + "; ".join(parts))
    claimed = {group.logix_name for answer in answers for group in answer.members}
    claimed |= {group.logix_name for group in unreadable}
    unclaimed = sorted(name for name in seen_by if name not in claimed)
    working = sum(1 for answer in answers if answer.lots is not None)
    summary = f"{updated} lot groups updated from {working} of {len(answers) + len(unreadable)} API keys"
    lines += unreadable_lines
    lines += _listed("Parking Logix lots no lot group claims", [quoted(name) for name in unclaimed])
    return TaskResult(
        rows_touched=updated,
        message="\n".join([summary, *lines]),
        partly_failed=working < len(answers) or bool(unreadable),
    )


SFTP_KEYS = (
    "csv_import_sftp_host",
    "csv_import_sftp_port",
    "csv_import_sftp_username",
    "csv_import_sftp_password",
    "csv_import_sftp_private_key",
    "csv_import_sftp_host_key",
    "csv_import_sftp_folder",
)


@REGISTRY.task(
    "managed-user-import",
    title="Managed User Import",
    interval_seconds=300,
    description=(
        "Fetches CSV files from the SFTP Host when one is set, then imports users from every CSV file "
        "of the Import Drop Folder (moved to .bak once done, on both sides); failures are e-mailed to "
        "the Failed Import Email and listed on User Import."
    ),
)
def managed_user_import(ctx: TaskContext) -> TaskResult:
    """Pull the SFTP server's files into the drop folder (``workers.sftp_pull``), then import every
    complete CSV file of the drop folder (``dashboard.services.user_import``), one after the other,
    oldest first. A file still being written is left for the next run; a file refused for its form
    is kept in ``.bak`` and its reason e-mailed, like failed rows.

    Idempotent and safe to kill: a processed file has left the folder, rows upsert by unique id,
    and an import cut off by a killed worker (its history row still open, its file still in the
    folder) is closed as interrupted by the next run, which imports the file again. A failed pull
    does not stop the import of what is already in the drop folder; the run is then failed (nothing
    else to do) or partly failed, with the reason, in the task log and on User Import."""
    keys = ("csv_import_folder", "csv_import_failed_email", "system_reply_to_email", *SFTP_KEYS)
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, keys)
    folder = user_import.folder_path(str(config["csv_import_folder"]))
    if folder is None:
        raise TaskNotConfigured(f"Import Drop Folder not set ({THIRD_PARTY_HINT} > CSV User Import)")
    with ctx.session() as session:
        interrupted = user_import.close_interrupted(session, folder, utcnow())
    lines: list[str] = [
        f"{name}: interrupted (the worker stopped); "
        + ("imported again" if again else "its rows were saved and the file was already in .bak")
        for name, again in interrupted
    ]
    for line in lines:
        ctx.logger.warning("user import: %s", line)
    pull_error = ""
    if config["csv_import_sftp_host"]:
        sftp = _sftp_config(config)
        try:
            pulled = sftp_pull.pull(
                sftp, folder, pause=IMPORT_SETTLE_SECONDS, min_age=SFTP_MIN_AGE_SECONDS, now=utcnow
            )
        except sftp_pull.SftpPullError as exc:
            pulled = exc.result
            pull_error = f"SFTP pull FAILED: {exc}"
            ctx.logger.error("user import: %s", pull_error)
            lines.append(pull_error)
        fetched = f"SFTP {sftp.where}: {len(pulled.fetched)} files fetched (moved into .bak on the server)"
        lines.append(fetched + (f": {', '.join(pulled.fetched)}" if pulled.fetched else ""))
        ctx.logger.info("user import: %s", lines[-1])
        lines += _listed("left on the SFTP server for the next run (still being written)", pulled.waiting)
        # Never fetched until a person renames them: a partial failure, shown on User Import.
        lines += _listed(
            "SFTP pull FAILED for files whose names are not UTF-8 (rename them on the server)",
            pulled.unreadable,
        )
        pull_error = pull_error or ("unreadable names" if pulled.unreadable else "")
    try:
        ready, waiting = user_import.ready_files(folder, pause=IMPORT_SETTLE_SECONDS)
    except OSError as exc:
        raise TaskNotConfigured(f"the Import Drop Folder {folder} cannot be used: {exc}") from exc
    refused = 0
    failed_rows = 0
    rows = 0
    for path in ready:
        with ctx.session() as session:
            backend = email_delivery.configured_backend(ctx.core, session)
        ctx.logger.info("user import: %s started", path.name)
        result = user_import.import_file(
            ctx.session,
            path,
            recipient=str(config["csv_import_failed_email"]),
            backend=backend,
            reply_to=str(config["system_reply_to_email"]) or None,
            tz=ctx.core.settings.tz,
            progress=lambda line: ctx.logger.info("user import: %s", line),
        )
        mailed = f", e-mailed (outbox message {result.outbox_message_id})" if result.outbox_message_id else ""
        if result.error:
            refused += 1
            lines.append(f"{result.filename}: refused, {result.error}; kept as {result.kept_as}{mailed}")
        else:
            rows += result.created + result.updated
            failed_rows += result.failed
            lines.append(
                f"{result.filename}: {result.rows_read} rows, {result.created} created, "
                f"{result.updated} updated, {result.unchanged} unchanged, {result.failed} failed; "
                f"kept as {result.kept_as}{mailed}"
            )
        ctx.logger.info("user import: %s", lines[-1])
    if (refused or failed_rows) and not config["csv_import_failed_email"]:
        lines.append("Failed Import Email not set: the failures were not e-mailed (they are on User Import)")
    summary = f"{len(ready)} files processed" if ready else "no file to import"
    lines += _listed("left for the next run (still being written)", waiting)
    message = "\n".join([summary, *lines])
    if pull_error and not ready:
        raise sftp_pull.SftpPullError(message)
    return TaskResult(rows_touched=rows, message=message, partly_failed=refused > 0 or bool(pull_error))


def _sftp_config(config: dict[str, system_settings.Value]) -> sftp_pull.SftpConfig:
    return sftp_pull.SftpConfig(
        host=str(config["csv_import_sftp_host"]),
        port=int(config["csv_import_sftp_port"]),
        username=str(config["csv_import_sftp_username"]),
        password=str(config["csv_import_sftp_password"]),
        private_key=str(config["csv_import_sftp_private_key"]),
        host_key=str(config["csv_import_sftp_host_key"]),
        folder=str(config["csv_import_sftp_folder"]),
    )


@REGISTRY.task(
    "peoplesoft-holds",
    title="PeopleSoft Holds Report",
    interval_seconds=86400,
    schedule="0 2 * * *",
    description=(
        "E-mails the Holds Added and Holds Released files to the PeopleSoft Holds Notification Email "
        "(nightly at 02:00 by default; the files are kept on PeopleSoft Holds)."
    ),
)
def peoplesoft_holds(ctx: TaskContext) -> TaskResult:
    """Build, keep and e-mail the two holds files (``dashboard.services.peoplesoft``). Off unless
    Enable PeopleSoft Holds is on, and then the run log says so in a line rather than failing.
    Idempotent: a second run the same night finds nothing changed and sends nothing."""
    keys = (
        "peoplesoft_enabled",
        "peoplesoft_holds_email",
        "peoplesoft_file_pattern",
        "system_reply_to_email",
    )
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, keys)
    if not config["peoplesoft_enabled"]:
        raise TaskNotConfigured(
            "PeopleSoft holds are turned off in System Settings (Third Party > PeopleSoft Holds > "
            "Enable PeopleSoft Holds)"
        )
    _require(config, ("peoplesoft_holds_email",))
    with ctx.session() as session:
        backend = email_delivery.configured_backend(ctx.core, session)
        report = peoplesoft.run_report(
            session,
            utcnow(),
            ctx.core.settings.tz,
            pattern=str(config["peoplesoft_file_pattern"]),
            recipient=str(config["peoplesoft_holds_email"]),
            backend=backend,
            reply_to=str(config["system_reply_to_email"]) or None,
        )
    parts = [f"{report.added_count} holds added", f"{report.released_count} released"]
    if report.emailed:
        parts.append(
            f"e-mailed to {report.recipient} ({report.added_filename}, {report.released_filename}; "
            f"outbox message {report.outbox_message_id})"
        )
    else:
        parts.append("nothing changed since the last report, so nothing was e-mailed")
    if report.skipped:
        people = [f"{s.name} <{s.email}> owes {peoplesoft.money(s.owed_cents)}" for s in report.skipped]
        parts += _listed(f"{len(people)} owing users skipped (no Student/Staff ID)", people)
    return TaskResult(rows_touched=report.added_count + report.released_count, message="; ".join(parts))


@REGISTRY.task(
    "occupancy-snapshots",
    title="Occupancy Snapshots",
    interval_seconds=300,
    description=(
        "Records every lot group's occupancy from each source in the history used by the occupancy charts."
    ),
    default_enabled=True,
)
def occupancy_snapshots(ctx: TaskContext) -> TaskResult:
    """The periodic history (a big jump is also recorded at once, by ``occupancy.apply_figure``).
    On by default: it needs no configuration and the charts are empty without it."""
    now = utcnow()
    with ctx.session() as session:
        policy = occupancy.load_policy(session, ctx.core.secrets)
        store = occupancy.LiveStore(ctx.core.redis)
        states = occupancy.group_states(session, store, policy.staleness, now)
        rows = occupancy.record_snapshots(session, store, states, now)
    return TaskResult(rows_touched=rows, message=f"{rows} snapshots of {len(states)} lot groups recorded")


@REGISTRY.task(
    "waitlist-offers",
    title="Waitlist Offers",
    interval_seconds=60,
    description=(
        "Settles or releases card payments left pending (asking the card processor), expires "
        "waitlist offers nobody took and offers freed spaces to the next people waiting "
        "(e-mailed, held for the Waitlist hold on System Settings > Occupancy)."
    ),
    default_enabled=True,
)
def waitlist_offers(ctx: TaskContext) -> TaskResult:
    """Keep the waitlists moving: lapsed offers pass on, and every lot with people waiting offers
    what it has free (space frees up without anyone here noticing: permits lapse, checkouts give up,
    the lot editor raises an allowance). Payments left pending are resolved first with the card
    processor (``payments.reconcile_pending``: a charged one is settled and its receipt sent, a paid
    violation's boot released with its code, the others released), so abandoned holds are gone
    before spaces are counted. Each lot in its own transaction, so one lot's problem does not hold
    up the others. On by default: it needs no configuration. Idempotent: a held space is no longer
    free, so a second run offers nothing twice, and a settled payment is not settled again."""
    now = utcnow()
    settings = ctx.core.settings
    with ctx.session() as session:
        site_name = str(system_settings.get(session, ctx.core.secrets, "site_name"))
        return_location = str(system_settings.get(session, ctx.core.secrets, "boot_return_location"))
    receipt = payments.ReceiptContext(
        "there", site_name, settings.public_url, settings.tz, ctx.core.secrets, return_location
    )
    with ctx.session() as session:
        backend = email_delivery.configured_backend(ctx.core, session)
    checkouts = payments.reconcile_pending(
        ctx.core.db, now, receipt=receipt, backend=backend, secrets=ctx.core.secrets
    )
    with ctx.session() as session:
        policy = waitlist.offer_policy(session, ctx.core.secrets, settings.public_url, settings.tz, backend)
        expiry = waitlist.expire_offers(session, now, policy)
        lots_waiting = sorted(waitlist.waiting_counts(session))
    offered = len(expiry.offered)
    for lot_id in lots_waiting:
        with ctx.session() as session:
            offered += len(waitlist.offer_next(session, lot_id, now, policy))
    return TaskResult(
        rows_touched=checkouts.settled + checkouts.released + expiry.expired + offered,
        message=(
            f"{checkouts.released} abandoned checkouts closed; {checkouts.settled} charged checkouts "
            f"settled; {checkouts.waiting} payments awaiting the processor; {expiry.expired} lapsed "
            f"offers expired; {offered} offers made; {len(lots_waiting)} lots with people waiting"
        ),
    )


@REGISTRY.task(
    "payment-reconciliation",
    title="Payment Reconciliation",
    interval_seconds=86400,
    schedule="30 3 * * *",
    description=(
        "Compares the last three days of card payments with what the card processor recorded (the "
        "sandbox's ledger; Stripe's balance transactions) and lists every disagreement on Payment "
        "Reconciliation for a manager; changes no payment. Forgets processed webhook events after "
        "30 days."
    ),
    default_enabled=True,
)
def payment_reconciliation(ctx: TaskContext) -> TaskResult:
    """``reconciliation.run``. On by default: it needs no configuration and changes nothing but its
    own list. A processor that cannot be asked makes the run partly failed (the others are still
    checked). Idempotent: a mismatch found again is the same row."""
    report = reconciliation.run(ctx.core.db, ctx.core.secrets, utcnow())
    parts = []
    for check in report.checks:
        name = reconciliation.PROVIDER_WORDS.get(check.provider, check.provider)
        if check.error:
            parts.append(f"{name}: not checked ({check.error})")
        else:
            parts.append(
                f"{name}: {check.charges} charges compared, {check.found} mismatches ({check.new} new)"
            )
    days = reconciliation.EVENT_RETENTION.days
    parts.append(f"{report.pruned_events} webhook events older than {days} days forgotten")
    return TaskResult(
        rows_touched=sum(check.new for check in report.checks) + report.pruned_events,
        message="; ".join(parts),
        partly_failed=report.failed,
    )


@REGISTRY.task(
    "email-delivery",
    title="Deliver Queued Email",
    interval_seconds=60,
    description=(
        "Retries e-mail the SMTP server or Mailgun could not take (after 1, 2, 4 ... minutes, for about "
        "four hours), queues messages whose queueing failed, and takes back messages of a worker that "
        "stopped mid-send. Nothing to do while Mail Delivery is Outbox only."
    ),
    default_enabled=True,
)
def email_delivery_sweep(ctx: TaskContext) -> TaskResult:
    """Enqueue the outbox rows whose next attempt is due (each attempt's job id is fixed, so a row
    already queued is not queued twice; the claim in ``deliver`` is the real guard). On by default:
    a retry must not wait for an admin to notice."""
    result = email_delivery.sweep(ctx.core)
    return TaskResult(
        rows_touched=result.enqueued + result.released,
        message=(
            f"{result.enqueued} messages queued for delivery; "
            f"{result.released} messages of a stopped worker taken back"
        ),
    )


@REGISTRY.task(
    "boot-non-return",
    title="Unreturned Boots",
    interval_seconds=3600,
    description=(
        "Flags released boots not returned within the days set on System Settings > Third Party > "
        "Universal Boot, and charges the late fee set there (once per boot)."
    ),
)
def boot_non_return(ctx: TaskContext) -> TaskResult:
    """Flag boots whose release code went out ``boot_non_return_days`` ago and that are not back;
    with a late fee set, add it to the owner's account as a new violation. Idempotent: a boot is
    flagged and charged once (``boots.flag_non_returned``), every change audited. Off by default like
    every task that charges money; the report and the dashboard show unreturned boots without it."""
    keys = ("boot_universal_enabled", "boot_non_return_days", "boot_late_fee_dollars", "violation_due_days")
    with ctx.session() as session:
        config = _settings(session, ctx.core.secrets, keys)
    if not config["boot_universal_enabled"]:
        raise TaskNotConfigured(f"Universal Boot Enabled is off ({THIRD_PARTY_HINT})")
    with ctx.session() as session:
        result = boots.flag_non_returned(
            session,
            utcnow(),
            days=int(config["boot_non_return_days"]),
            fee_cents=int(config["boot_late_fee_dollars"]) * 100,
            due_days=int(config["violation_due_days"]),
        )
    parts = [
        f"{len(result.flagged)} boots newly flagged as not returned",
        f"{len(result.fees)} late fees charged",
    ]
    parts += _listed("flagged", list(result.flagged))
    parts += _listed("late-fee tickets", list(result.fees))
    return TaskResult(rows_touched=len(result.flagged) + len(result.fees), message="; ".join(parts))


@dataclass(frozen=True)
class _LogixGroup:
    """What the sync needs of a lot group once the session that loaded it is closed."""

    id: int
    name: str
    logix_name: str


@dataclass(frozen=True)
class _KeyAnswer:
    """One key's call: its lot groups, and the lots it sees or why the call failed."""

    members: list[_LogixGroup]
    lots: list[LotCount] | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """The key as the log names it: by its groups, never by the key itself."""
        return "key of " + ", ".join(member.name for member in self.members)


def _settings(session: Session, secrets: SecretBox, keys: Iterable[str]) -> dict[str, system_settings.Value]:
    """Settings for a task; a secret stored under a rotated secret key makes the task not configured."""
    keys = list(keys)
    try:
        return system_settings.get_many(session, secrets, keys)
    except SecretError as exc:
        labels = ", ".join(
            system_settings.definition(key).label for key in keys if system_settings.definition(key).secret
        )
        raise TaskNotConfigured(
            f"{labels} cannot be read with the current secret key: enter it again ({THIRD_PARTY_HINT})"
        ) from exc


def _require(config: dict[str, system_settings.Value], keys: Iterable[str]) -> None:
    missing = [system_settings.definition(key).label for key in keys if not config[key]]
    if missing:
        raise TaskNotConfigured(f"{', '.join(missing)} not set ({THIRD_PARTY_HINT})")


def _parking_logix_groups(
    session: Session, secrets: SecretBox
) -> tuple[dict[str, list[_LogixGroup]], list[_LogixGroup]]:
    """Configured lot groups by decrypted key (the same key encrypts differently for each group, so
    only the plaintext shows which groups share one), and the groups whose key is unreadable."""
    groups = session.scalars(
        select(LotGroup)
        .where(LotGroup.parking_logix_name.is_not(None), LotGroup.parking_logix_api_key.is_not(None))
        .order_by(LotGroup.name)
    )
    by_key: dict[str, list[_LogixGroup]] = {}
    unreadable: list[_LogixGroup] = []
    for group in groups:
        if not group.parking_logix_name:
            continue
        found = _LogixGroup(group.id, group.name, group.parking_logix_name)
        try:
            key = secrets.decrypt(group.parking_logix_api_key)
        except SecretError:
            unreadable.append(found)
            continue
        if key:
            by_key.setdefault(key, []).append(found)
    return by_key, unreadable


def _upsert_mistall_lots(session: Session, readings: Iterable[MistallLotReading], now: datetime) -> None:
    """Insert or update by Mistall id. Lots Mistall stopped reporting stay, so a lot group's chosen
    Mistall lot does not vanish from its dropdown after one odd answer."""
    readings = list(readings)
    existing = {
        lot.mistall_id: lot
        for lot in session.scalars(
            select(MistallLot).where(MistallLot.mistall_id.in_([r.mistall_id for r in readings]))
        )
    }
    for reading in readings:
        lot = existing.get(reading.mistall_id)
        if lot is None:
            lot = MistallLot(mistall_id=reading.mistall_id)
            session.add(lot)
        lot.name = reading.name
        lot.capacity = reading.capacity
        lot.occupied = reading.occupied
        lot.reported_at = reading.updated_at
        lot.imported_at = now


def _apply(
    session: Session,
    store: occupancy.LiveStore,
    policy: occupancy.Policy,
    group_id: int,
    source: OccupancySource,
    occupied: int,
    capacity: int,
    ts: datetime,
) -> None:
    """Record a vendor count, flagged when it exceeds the admin's sanity limit (a drifted count
    still shows, but marked, rather than being dropped)."""
    flag = occupancy.capacity_flag(occupied, capacity, policy)
    occupancy.apply_figure(
        session, store, group_id, source, occupied, capacity, ts, step_percent=policy.step_percent, flag=flag
    )


def _observed_at(reported: datetime | None, now: datetime) -> datetime:
    """The vendor's own time of the count when it sent one (so staleness measures the data's age),
    never later than now (a vendor clock ahead of ours must not make a figure look fresh for longer)."""
    return min(reported, now) if reported else now


def _listed(label: str, items: list[str]) -> list[str]:
    return [f"{label}: {', '.join(items)}"] if items else []
