"""Admin-editable system settings (System Configuration > System Settings).

One declarative list, ``DEFINITIONS``, is the only home of every setting: the settings page builds
its form from it, and integrations, workers and the mail sender read values through ``get``. Adding
a setting means adding a ``SettingDef`` here, nothing else.

Storage: a ``SystemSetting`` row exists only where an admin departed from the default, so a
default changed in code reaches every installation that never touched the setting, and an emptied
field means "back to the default". Secrets are stored as ``SecretBox`` tokens and never leave this
module in plaintext except through ``get``/``get_many`` (for the code that must call the vendor);
``form_values`` hands the UI masks only.

Why this module is long: most of it is ``DEFINITIONS``, one entry per setting (57 of them); keeping
the list whole is what makes it the only home of every setting.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError, mask
from dashboard.services import audit, ssh_keys
from dashboard.services.errors import ValidationFailed
from dashboard.services.users import EMAIL_RE
from models import SystemSetting

GENERAL = "General"
THIRD_PARTY = "Third Party"
EMAIL = "Email"
OCCUPANCY = "Occupancy"

AUDIT_ENTITY = "system_settings"
AUDIT_ACTION = "settings.update"
MAX_TEXT = 500
MAX_SECRET = 4000
# What the UI shows for a stored secret the current PARKOPS_SECRET_KEY cannot decrypt (the key was
# rotated): it is set, but useless until someone enters it again.
UNREADABLE = "•" * 8 + " set, but unreadable with the current secret key: enter it again"

_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no"}
_INT_RE = re.compile(r"^[+-]?\d+$")


class Kind(enum.StrEnum):
    BOOL = "bool"
    TEXT = "text"
    EMAIL = "email"
    URL = "url"
    INT = "int"
    SECRET = "secret"  # noqa: S105 (a kind of setting, not a password)
    CHOICE = "choice"


Value = bool | int | str


@dataclass(frozen=True)
class SettingDef:
    """One setting: where it sits on the page (tab, section), how it is validated (kind, choices,
    bounds) and what it is when nobody has set it (default)."""

    key: str
    label: str
    tab: str
    section: str
    kind: Kind
    default: Value = ""
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, label), for Kind.CHOICE
    min_value: int | None = None
    max_value: int | None = None
    # A further check of a text value: returns it (normalised) or raises ValueError for the field.
    check: Callable[[str], str] | None = None

    @property
    def secret(self) -> bool:
        return self.kind is Kind.SECRET


DEFINITIONS: tuple[SettingDef, ...] = (
    # General
    SettingDef(
        "site_name", "Site Name", GENERAL, "Site", Kind.TEXT, "ParkOps",
        "Shown in page titles and e-mails.",
    ),
    SettingDef(
        "currency", "Currency", GENERAL, "Site", Kind.TEXT, "CAD",
        "The three-letter code (ISO 4217) fines and new permit products are charged in, sent to the"
        " card processor and shown beside every amount. A product keeps the currency it was created"
        " with.",
        check=lambda text: check_currency(text),
    ),
    SettingDef(
        "violation_due_days", "Violations Are Due After (days)", GENERAL, "Violations", Kind.INT, 30,
        "A ticket's due date: unpaid after it, a violation is overdue.",
        min_value=1, max_value=365,
    ),
    SettingDef(
        "system_reply_to_email", "Reply-to Admin Email Address", GENERAL, "System Emails", Kind.EMAIL, "",
        "The system default address that appears as the sender of system-level and task-automation"
        " e-mail messages.",
    ),
    # Third Party: Parking Logix
    SettingDef(
        "parking_logix_enabled", "Enable Parking Logix Integration", THIRD_PARTY, "Parking Logix",
        Kind.BOOL, False,
        "Turns on the Parking Logix sensor integration. Each lot group carries its own API code and"
        " Parking Logix lot name.",
    ),
    SettingDef(
        "parking_logix_base_url", "Parking Logix API Base URL", THIRD_PARTY, "Parking Logix", Kind.URL,
        "https://api.streetsoncloud.com",
        "Leave empty to use the default.",
    ),
    # Third Party: Mistall
    SettingDef(
        "mistall_enabled", "Enable Mistall Usage", THIRD_PARTY, "Mistall", Kind.BOOL, False,
        "Lets the Update Mistall system task fetch lot counts and shows the mistall-lot-stats"
        " dashboard widget.",
    ),
    SettingDef(
        "mistall_api_url", "Mistall API URL", THIRD_PARTY, "Mistall", Kind.URL, "",
        "Supplied by Mistall.",
    ),
    SettingDef(
        "mistall_username", "Mistall Username", THIRD_PARTY, "Mistall", Kind.TEXT, "",
        "Credentials are supplied by Mistall.",
    ),
    SettingDef("mistall_password", "Mistall Password", THIRD_PARTY, "Mistall", Kind.SECRET, ""),
    # Third Party: ParkMobile
    SettingDef(
        "parkmobile_username", "ParkMobile API Username", THIRD_PARTY, "ParkMobile", Kind.TEXT, "",
        "The three ParkMobile credentials are supplied by ParkMobile; the Fetch ParkMobile Stats"
        " task needs all of them.",
    ),
    SettingDef("parkmobile_password", "ParkMobile API Password", THIRD_PARTY, "ParkMobile", Kind.SECRET, ""),
    SettingDef("parkmobile_api_key", "ParkMobile X-API-Key", THIRD_PARTY, "ParkMobile", Kind.SECRET, ""),
    SettingDef(
        "parkmobile_base_url", "ParkMobile API Base URL", THIRD_PARTY, "ParkMobile", Kind.URL, "",
        "The ParkMobile permits endpoint, supplied by ParkMobile.",
    ),
    # Third Party: Mailgun
    SettingDef(
        "mailgun_domain", "Mailgun Domain", THIRD_PARTY, "Mailgun", Kind.TEXT, "",
        "The verified sending domain, e.g. opscom.example.edu.",
    ),
    SettingDef(
        "mailgun_api_key", "Mailgun Private API Key", THIRD_PARTY, "Mailgun", Kind.SECRET, "",
        "From the API Security section of the Mailgun dashboard.",
    ),
    SettingDef(
        "mailgun_base_url", "Mailgun API Base URL (Region)", THIRD_PARTY, "Mailgun", Kind.URL,
        "https://api.mailgun.net",
        "Use https://api.eu.mailgun.net for domains in Mailgun's EU region.",
    ),
    SettingDef(
        "mailgun_webhook_signing_key", "Mailgun Webhook Signing Key", THIRD_PARTY, "Mailgun", Kind.SECRET, "",
        "From Mailgun's Webhooks page. Point the Permanent Failure and Spam Complaint webhooks at"
        " <site address>/hooks/mailgun; bounced addresses are then flagged on the user.",
    ),
    SettingDef(
        "mailgun_dkim_host", "DKIM Host Name", THIRD_PARTY, "Mailgun", Kind.TEXT, "",
        "As Mailgun lists it, e.g. smtp._domainkey.opscom.example.edu. Only needed for the Email"
        " Domain page when no API key is set (with a key, Mailgun is asked).",
    ),
    SettingDef(
        "mailgun_dkim_value", "DKIM Record Value", THIRD_PARTY, "Mailgun", Kind.TEXT, "",
        "The generated DKIM key Mailgun gives for the domain (k=rsa; p=...).",
    ),
    SettingDef(
        "mailgun_receiving", "Receive Replies Through Mailgun", THIRD_PARTY, "Mailgun", Kind.BOOL, False,
        "Lists Mailgun's MX records on the Email Domain page.",
    ),
    # Third Party: Card Payments
    SettingDef(
        "payment_processor", "Card Processor", THIRD_PARTY, "Card Payments", Kind.CHOICE, "sandbox",
        "Sandbox: ParkOps' own test processor (test cards only, no money moves). Stripe: buyers enter"
        " their card on Stripe's secure page, never on ParkOps; needs the secret key and webhook"
        " secret below, and a Stripe webhook endpoint at <site>/hooks/stripe sending"
        " checkout.session.completed, checkout.session.expired, payment_intent.succeeded and"
        " payment_intent.payment_failed.",
        choices=(("sandbox", "Sandbox (test cards)"), ("stripe", "Stripe (hosted payment page)")),
    ),
    SettingDef(
        "stripe_publishable_key", "Stripe Publishable Key", THIRD_PARTY, "Card Payments", Kind.SECRET, "",
        "pk_test_… or pk_live_…; it must be of the same mode (test or live) as the secret key, which is"
        " checked before any payment.",
    ),
    SettingDef(
        "stripe_secret_key", "Stripe Secret Key", THIRD_PARTY, "Card Payments", Kind.SECRET, "",
        "sk_… or a restricted rk_… key allowed to write Checkout Sessions and Refunds.",
    ),
    SettingDef(
        "stripe_webhook_secret", "Stripe Webhook Signing Secret", THIRD_PARTY, "Card Payments",
        Kind.SECRET, "", "whsec_…, shown with the webhook endpoint in Stripe's dashboard.",
    ),
    SettingDef(
        "stripe_api_base", "Stripe API Base URL", THIRD_PARTY, "Card Payments", Kind.URL,
        "https://api.stripe.com", "Leave empty to use the default.",
    ),
    # Third Party: CSV User Import
    SettingDef(
        "csv_import_failed_email", "Failed Import Email", THIRD_PARTY, "CSV User Import", Kind.EMAIL, "",
        "Receives the list of users a managed (SFTP) import could not import, with the reasons.",
    ),
    SettingDef(
        "csv_import_folder", "Import Drop Folder", THIRD_PARTY, "CSV User Import", Kind.TEXT, "",
        "A folder on this server (made if missing) where CSV files of users are dropped, e.g. the"
        " chrooted SFTP folder of the README. The Managed User Import task imports each file and then"
        " moves it into .bak inside it.",
    ),
    # Third Party: the SFTP pull (files fetched from the institution's server into the drop folder)
    SettingDef(
        "csv_import_sftp_host", "SFTP Host", THIRD_PARTY, "CSV User Import: SFTP Pull", Kind.TEXT, "",
        "The institution's SFTP server to fetch CSV files from, on every run of Managed User Import;"
        " they are downloaded into the Import Drop Folder and imported like dropped files. Empty: no"
        " pull.",
        check=lambda text: check_host_name(text),
    ),
    SettingDef(
        "csv_import_sftp_port", "SFTP Port", THIRD_PARTY, "CSV User Import: SFTP Pull", Kind.INT, 22,
        min_value=1, max_value=65535,
    ),
    SettingDef(
        "csv_import_sftp_username", "SFTP Username", THIRD_PARTY, "CSV User Import: SFTP Pull", Kind.TEXT,
        "",
    ),
    SettingDef(
        "csv_import_sftp_password", "SFTP Password", THIRD_PARTY, "CSV User Import: SFTP Pull",
        Kind.SECRET, "", "Leave empty when the server takes the private key below.",
    ),
    SettingDef(
        "csv_import_sftp_private_key", "SFTP Private Key", THIRD_PARTY, "CSV User Import: SFTP Pull",
        Kind.SECRET, "",
        "The whole key file (-----BEGIN ... -----END ...), without a passphrase; its public half goes"
        " in the account's authorized_keys on the server.",
        check=lambda text: ssh_keys.check_private_key(text),
    ),
    SettingDef(
        "csv_import_sftp_host_key", "SFTP Host Key", THIRD_PARTY, "CSV User Import: SFTP Pull", Kind.TEXT,
        "",
        "The server's public host key, as ssh-keyscan -t ed25519 <host> prints it (confirm its"
        " fingerprint with the server's administrator). ParkOps connects only to a server showing"
        " this key.",
        check=lambda text: ssh_keys.check_host_key(text),
    ),
    SettingDef(
        "csv_import_sftp_folder", "SFTP Remote Folder", THIRD_PARTY, "CSV User Import: SFTP Pull",
        Kind.TEXT, "",
        "The folder on the server holding the files (relative to the login's folder, or absolute);"
        " each fetched file is moved into .bak inside it (made if missing). Empty: the login's folder.",
    ),
    # Third Party: Universal Boot
    SettingDef(
        "boot_universal_enabled", "Universal Boot Enabled", THIRD_PARTY, "Universal Boot", Kind.BOOL, False,
        "Turns the boot management and self-release feature on.",
    ),
    SettingDef(
        "boot_require_overdue_paid", "Require Overdue Paid", THIRD_PARTY, "Universal Boot", Kind.BOOL, False,
        "Off: any of an owner's violations can be paid on their own. On: every overdue violation of"
        " the account (or of the plate, for a guest) must be in the same payment.",
    ),
    SettingDef(
        "boot_return_location", "Boot Return Location", THIRD_PARTY, "Universal Boot", Kind.TEXT, "",
        "Where owners bring a released boot back; the Boot Release Email names it.",
    ),
    SettingDef(
        "boot_non_return_days", "Boot Counts As Not Returned After (days)", THIRD_PARTY, "Universal Boot",
        Kind.INT, 3,
        "Days after the release code was sent; such boots are flagged on the Boot Device Report and"
        " the Dashboard.",
        min_value=1, max_value=365,
    ),
    SettingDef(
        "boot_late_fee_dollars", "Boot Non-Return Late Fee (dollars)", THIRD_PARTY, "Universal Boot",
        Kind.INT, 0,
        "Charged once, as a new violation for the same vehicle, when a boot counts as not returned."
        " 0: no fee, the boot is only flagged.",
        min_value=0, max_value=10000,
    ),
    # Third Party: PeopleSoft Holds
    SettingDef(
        "peoplesoft_enabled", "Enable PeopleSoft Holds", THIRD_PARTY, "PeopleSoft Holds", Kind.BOOL, False,
        "Lets the PeopleSoft Holds Report system task build and e-mail the Holds Added and Holds"
        " Released files (also turn the task on in System Task Logs).",
    ),
    SettingDef(
        "peoplesoft_holds_email", "PeopleSoft Holds Notification Email", THIRD_PARTY, "PeopleSoft Holds",
        Kind.EMAIL, "",
        "Receives the Holds Added and Holds Released files; required for the PeopleSoft Holds Report.",
    ),
    SettingDef(
        "peoplesoft_file_pattern", "PeopleSoft File Name Pattern", THIRD_PARTY, "PeopleSoft Holds",
        Kind.TEXT, "holds_{type}_{date}.txt",
        "{type} becomes added or released, {date} the report's date (YYYYMMDD); letters, digits, dots,"
        " dashes and underscores otherwise; ends in .txt.",
        check=lambda text: check_file_name_pattern(text),
    ),
    # Email: outgoing mail
    SettingDef(
        "mail_backend", "Mail Delivery", EMAIL, "Outgoing Mail", Kind.CHOICE, "outbox",
        "Outbox only keeps messages in the Email Outbox without sending them. SMTP and Mailgun send"
        " from the worker, retrying for about four hours while the server cannot be reached.",
        choices=(
            ("outbox", "Outbox only (do not send)"), ("smtp", "SMTP server"), ("mailgun", "Mailgun API"),
        ),
    ),
    SettingDef(
        "mail_from_address", "From Address", EMAIL, "Sender", Kind.EMAIL, "",
        "An address of the institution's own sending domain, e.g. parking@yourdomain.edu (for Mailgun,"
        " of the Mailgun domain). Required to send.",
    ),
    SettingDef(
        "mail_from_name", "From Name", EMAIL, "Sender", Kind.TEXT, "",
        "Shown as the sender's name; empty: the Site Name followed by \"Parking\".",
    ),
    SettingDef("smtp_host", "SMTP Host", EMAIL, "SMTP", Kind.TEXT, ""),
    SettingDef("smtp_port", "SMTP Port", EMAIL, "SMTP", Kind.INT, 587, min_value=1, max_value=65535),
    SettingDef("smtp_username", "SMTP Username", EMAIL, "SMTP", Kind.TEXT, "", "Leave empty for no login."),
    SettingDef("smtp_password", "SMTP Password", EMAIL, "SMTP", Kind.SECRET, ""),
    SettingDef(
        "smtp_security", "SMTP Security", EMAIL, "SMTP", Kind.CHOICE, "starttls",
        "STARTTLS usually runs on port 587, SSL/TLS on 465.",
        choices=(("starttls", "STARTTLS"), ("ssl", "SSL/TLS"), ("none", "None (trusted local relay only)")),
    ),
    # Occupancy: when a source's figure stops being trusted, and what history keeps
    SettingDef(
        "occupancy_stale_mistall_minutes", "Mistall Data Is Stale After (minutes)", OCCUPANCY, "Staleness",
        Kind.INT, 25, "The Mistall task runs every 10 minutes; two missed runs mark the figure stale.",
        min_value=1, max_value=10080,
    ),
    SettingDef(
        "occupancy_stale_parking_logix_minutes", "Parking Logix Data Is Stale After (minutes)", OCCUPANCY,
        "Staleness", Kind.INT, 15, min_value=1, max_value=10080,
    ),
    SettingDef(
        "occupancy_stale_devices_minutes", "Live Sensor Data Is Stale After (minutes)", OCCUPANCY,
        "Staleness", Kind.INT, 60,
        "Counters speak only when cars pass (and when they send an absolute count), so a quiet night is"
        " not a fault: allow for it.",
        min_value=1, max_value=10080,
    ),
    SettingDef(
        "occupancy_snapshot_step_percent", "Record History On a Change Of (percentage points)", OCCUPANCY,
        "History", Kind.INT, 5,
        "Besides the periodic Occupancy Snapshots task, a jump of this size is recorded at once.",
        min_value=1, max_value=100,
    ),
    SettingDef(
        "occupancy_flag_above_percent", "Flag Counts Above (percent of capacity)", OCCUPANCY, "Sanity",
        Kind.INT, 110,
        "A live count above this share of capacity is shown flagged: a counter has probably drifted.",
        min_value=100, max_value=500,
    ),
    SettingDef(
        "waitlist_hold_minutes", "Waitlist Offer Holds a Space For (minutes)", OCCUPANCY, "Waitlist",
        Kind.INT, 1440,
        "When a space frees up in a sold-out lot, the first person waiting is e-mailed and the space is"
        " held for them this long; then it passes to the next person.",
        min_value=5, max_value=10080,
    ),
)  # fmt: skip

_BY_KEY: dict[str, SettingDef] = {d.key: d for d in DEFINITIONS}


def definitions(tab: str | None = None) -> list[SettingDef]:
    """All settings in display order, or those of one tab."""
    return [d for d in DEFINITIONS if tab is None or d.tab == tab]


def definition(key: str) -> SettingDef:
    """The definition of ``key``; a KeyError means a typo in code, not bad user input."""
    return _BY_KEY[key]


def tabs() -> list[str]:
    """Tab names in display order."""
    return list(dict.fromkeys(d.tab for d in DEFINITIONS))


def get(session: Session, secrets: SecretBox, key: str) -> Value:
    """The typed value of ``key`` (the default when unset); secrets come back decrypted, so only
    code that talks to the vendor should ask for them. Raises ``SecretError`` after a key rotation."""
    return get_many(session, secrets, [key])[key]


def get_many(session: Session, secrets: SecretBox, keys: Iterable[str]) -> dict[str, Value]:
    """Several settings in one query (an integration usually needs its URL and credentials together)."""
    defs = [definition(key) for key in keys]
    stored = _stored(session, [d.key for d in defs])
    return {d.key: _decode(d, stored.get(d.key), secrets) for d in defs}


def form_values(session: Session, secrets: SecretBox, tab: str | None = None) -> dict[str, Value]:
    """What the settings form may show: plain values, and for secrets only ``mask(...)`` ("" when
    unset, ``UNREADABLE`` when the current key cannot decrypt it)."""
    defs = definitions(tab)
    stored = _stored(session, [d.key for d in defs])
    values: dict[str, Value] = {}
    for d in defs:
        if d.secret:
            try:
                values[d.key] = mask(secrets.decrypt(stored.get(d.key)))
            except SecretError:
                values[d.key] = UNREADABLE
        else:
            values[d.key] = _decode(d, stored.get(d.key), secrets)
    return values


def update(
    session: Session,
    secrets: SecretBox,
    values: Mapping[str, object],
    actor_id: int | None,
    clear: Collection[str] = (),
) -> list[str]:
    """Save a form: validate everything first (all field errors in one ``ValidationFailed``, nothing
    written), then write what changed and one audit entry. Returns the changed keys in display order.

    An empty secret input means "keep the current one" (the form never holds the secret, so it is
    always empty unless retyped); removing a secret takes an explicit ``clear``. An empty non-secret
    input restores the default.
    """
    errors: dict[str, str] = {}
    for key in [*values, *clear]:
        if key not in _BY_KEY:
            errors[key] = "unknown setting"
    for key in clear:
        if key in _BY_KEY and not _BY_KEY[key].secret:
            errors[key] = "only secret settings can be cleared"

    known = [d for d in DEFINITIONS if d.key in values or d.key in clear]
    stored = _stored(session, [d.key for d in known])
    writes: dict[str, str | None] = {}  # key -> new stored value, None: delete the row
    changes: dict[str, object] = {}
    for d in known:
        if d.key in errors:
            continue
        try:
            if d.secret:
                planned = _plan_secret(d, values.get(d.key), d.key in clear, stored.get(d.key), secrets)
            else:
                planned = _plan_value(d, values.get(d.key), stored.get(d.key), secrets)
        except ValueError as exc:
            errors[d.key] = str(exc)
            continue
        if planned is not None:
            writes[d.key], changes[d.key] = planned
    if errors:
        raise ValidationFailed(errors)
    if not writes:
        return []

    rows = {r.key: r for r in session.scalars(select(SystemSetting).where(SystemSetting.key.in_(writes)))}
    for key, new in writes.items():
        row = rows.get(key)
        if new is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(SystemSetting(key=key, value=new, updated_by_id=actor_id))
        else:
            row.value = new
            row.updated_by_id = actor_id
    audit.record(
        session,
        actor_id=actor_id,
        action=AUDIT_ACTION,
        entity_type=AUDIT_ENTITY,
        entity_id=None,
        changes=changes,
    )
    return [d.key for d in DEFINITIONS if d.key in changes]


def _stored(session: Session, keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = session.execute(select(SystemSetting.key, SystemSetting.value).where(SystemSetting.key.in_(keys)))
    return {key: value for key, value in rows}


def _decode(d: SettingDef, raw: str | None, secrets: SecretBox) -> Value:
    if raw is None:
        return d.default
    if d.kind is Kind.SECRET:
        return secrets.decrypt(raw)
    if d.kind is Kind.BOOL:
        return raw == "true"
    if d.kind is Kind.INT:
        return int(raw)
    return raw


def _encode(d: SettingDef, value: Value) -> str:
    if d.kind is Kind.BOOL:
        return "true" if value else "false"
    return str(value)


# A planned change: (new stored value or None to delete the row, what the audit log says), or None.
Plan = tuple[str | None, object] | None


def _plan_value(d: SettingDef, raw: object, stored: str | None, secrets: SecretBox) -> Plan:
    new = _parse(d, raw)
    old = _decode(d, stored, secrets)
    if new == old:
        return None
    return (None if new == d.default else _encode(d, new)), {"old": old, "new": new}


def _plan_secret(d: SettingDef, raw: object, clearing: bool, stored: str | None, secrets: SecretBox) -> Plan:
    if raw is not None and not isinstance(raw, str):
        raise ValueError("must be text")
    new = (raw or "").strip()
    if clearing:
        if new:
            raise ValueError("enter a new value or clear it, not both")
        return (None, "cleared") if stored else None
    if not new:
        return None
    if len(new) > MAX_SECRET:
        raise ValueError(f"must be at most {MAX_SECRET} characters")
    if d.check is not None:
        new = d.check(new)
    try:
        unchanged = secrets.decrypt(stored) == new
    except SecretError:
        unchanged = False
    return None if unchanged else (secrets.encrypt(new), "changed")


def _parse(d: SettingDef, raw: object) -> Value:
    """Turn form input into the typed value, or raise ValueError with a message for the field."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return d.default
    if d.kind is Kind.BOOL:
        return _parse_bool(raw)
    if d.kind is Kind.INT:
        return _parse_int(d, raw)
    if not isinstance(raw, str):
        raise ValueError("must be text")
    text = raw.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if d.kind is Kind.EMAIL and not EMAIL_RE.match(text):
        raise ValueError("not a valid e-mail address")
    if d.kind is Kind.URL:
        return _parse_url(text)
    if d.kind is Kind.CHOICE and text not in {value for value, _label in d.choices}:
        raise ValueError("not one of the offered choices")
    return d.check(text) if d.check is not None else text


# Amounts are integer cents, sent to Stripe as the currency's minor unit: a currency without
# hundredths (Stripe's zero-decimal and three-decimal ones) would charge 100 times, or a tenth of,
# the price shown.
NOT_HUNDREDTHS = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
        "BHD",
        "JOD",
        "KWD",
        "OMR",
        "TND",
    ]
)


def check_currency(text: str) -> str:
    """A currency code as Stripe and the receipts want it: three letters, kept upper-case, of a
    currency counted in hundredths (prices are kept in cents)."""
    code = text.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError("three letters, such as CAD or USD")
    if code in NOT_HUNDREDTHS:
        raise ValueError(f"{code} is not counted in hundredths; ParkOps keeps prices in cents")
    return code


def currency(session: Session) -> str:
    """The site's currency (``currency``), CAD until an admin sets another. Not a secret, so no
    key is needed to read it (services that price things ask for it)."""
    d = definition("currency")
    return str(_stored(session, [d.key]).get(d.key) or d.default)


_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$|^[0-9A-Fa-f:.]+$")


def check_host_name(text: str) -> str:
    """A host name or an IP address, nothing else (no scheme, port or path)."""
    if len(text) > 253 or not _HOST_RE.match(text):
        raise ValueError("a host name or IP address only, e.g. sftp.campus.edu (the port has its own field)")
    return text


FILE_PLACEHOLDERS = ("{type}", "{date}")
_FILE_PATTERN_RE = re.compile(r"^(?:[A-Za-z0-9._-]|\{type\}|\{date\})+\.txt$")


def check_file_name_pattern(text: str) -> str:
    """A PeopleSoft file name pattern: safe characters and the two placeholders only (never
    ``str.format``, whose ``{0.__class__}`` would reach into objects), with ``{type}`` so the
    two files differ, ending in ``.txt`` (the format PeopleSoft expects)."""
    if "{type}" not in text:
        raise ValueError("must contain {type} (added or released), so the two files have different names")
    if not _FILE_PATTERN_RE.match(text) or len(text) > 120:
        raise ValueError(
            "use letters, digits, . _ - and the placeholders {type} and {date} only, ending in .txt"
            " (at most 120 characters)"
        )
    return text


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError("must be on or off")


def _parse_int(d: SettingDef, raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("must be a whole number")
    if isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    elif isinstance(raw, int):
        number = raw
    elif isinstance(raw, str) and _INT_RE.match(raw.strip()):
        number = int(raw.strip())
    else:
        raise ValueError("must be a whole number")
    if d.min_value is not None and number < d.min_value:
        raise ValueError(f"must be at least {d.min_value}")
    if d.max_value is not None and number > d.max_value:
        raise ValueError(f"must be at most {d.max_value}")
    return number


def _parse_url(text: str) -> str:
    """http(s) with a host. The trailing slash is dropped so clients can append ``/path``."""
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname or any(c.isspace() for c in text):
        raise ValueError("must be a full http:// or https:// URL")
    return text.rstrip("/")
