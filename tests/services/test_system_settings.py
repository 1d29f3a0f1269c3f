"""System settings: the seed's settings, typed values, validation, secrets at rest and the audit."""

import json

import asyncssh
import pytest
from sqlalchemy import select

from dashboard.crypto import SecretBox, SecretError, mask
from dashboard.services import audit
from dashboard.services import system_settings as ss
from dashboard.services.errors import ValidationFailed
from models import AuditLog, Role, SystemSetting

MAILGUN_KEY = "key-0123456789abcdef-PLAINTEXT"


@pytest.fixture
def box(core):
    return core.secrets


def test_every_setting_the_documentation_names_exists_on_its_tab():
    labels = {tab: [d.label for d in ss.definitions(tab)] for tab in ss.tabs()}
    assert ss.tabs() == ["General", "Third Party", "Email", "Occupancy"]
    assert labels["General"] == [
        "Site Name",
        "Currency",
        "Violations Are Due After (days)",
        "Reply-to Admin Email Address",
    ]
    assert labels["Third Party"] == [
        "Enable Parking Logix Integration",
        "Parking Logix API Base URL",
        "Enable Mistall Usage",
        "Mistall API URL",
        "Mistall Username",
        "Mistall Password",
        "ParkMobile API Username",
        "ParkMobile API Password",
        "ParkMobile X-API-Key",
        "ParkMobile API Base URL",
        "Mailgun Domain",
        "Mailgun Private API Key",
        "Mailgun API Base URL (Region)",
        "Mailgun Webhook Signing Key",
        "DKIM Host Name",
        "DKIM Record Value",
        "Receive Replies Through Mailgun",
        "Card Processor",
        "Stripe Publishable Key",
        "Stripe Secret Key",
        "Stripe Webhook Signing Secret",
        "Stripe API Base URL",
        "Failed Import Email",
        "Import Drop Folder",
        "SFTP Host",
        "SFTP Port",
        "SFTP Username",
        "SFTP Password",
        "SFTP Private Key",
        "SFTP Host Key",
        "SFTP Remote Folder",
        "Universal Boot Enabled",
        "Require Overdue Paid",
        "Boot Return Location",
        "Boot Counts As Not Returned After (days)",
        "Boot Non-Return Late Fee (dollars)",
        "Enable PeopleSoft Holds",
        "PeopleSoft Holds Notification Email",
        "PeopleSoft File Name Pattern",
    ]
    assert labels["Email"] == [
        "Mail Delivery",
        "From Address",
        "From Name",
        "SMTP Host",
        "SMTP Port",
        "SMTP Username",
        "SMTP Password",
    ] + ["SMTP Security"]
    sections = {d.label: d.section for d in ss.definitions()}
    assert sections["Reply-to Admin Email Address"] == "System Emails"
    assert sections["Failed Import Email"] == "CSV User Import"
    assert sections["PeopleSoft Holds Notification Email"] == "PeopleSoft Holds"
    assert (
        sections["PeopleSoft File Name Pattern"] == sections["Enable PeopleSoft Holds"] == "PeopleSoft Holds"
    )


def test_the_peoplesoft_file_name_pattern_is_checked_when_saved(core, box):
    """Only safe characters and the two placeholders: the name ends up on an e-mail attachment."""
    with core.db.session() as s:
        with pytest.raises(ValidationFailed) as bad:
            ss.update(s, box, {"peoplesoft_file_pattern": "{0.__class__}_{type}.txt"}, None)
        assert "placeholders {type} and {date} only" in bad.value.errors["peoplesoft_file_pattern"]
        with pytest.raises(ValidationFailed) as no_type:
            ss.update(s, box, {"peoplesoft_file_pattern": "holds_{date}.txt"}, None)
        assert "must contain {type}" in no_type.value.errors["peoplesoft_file_pattern"]
        assert ss.update(s, box, {"peoplesoft_file_pattern": "ps-{type}-{date}.txt"}, None) == [
            "peoplesoft_file_pattern"
        ]
        assert ss.get(s, box, "peoplesoft_file_pattern") == "ps-{type}-{date}.txt"


def test_definitions_are_consistent():
    keys = [d.key for d in ss.definitions()]
    assert len(keys) == len(set(keys))
    secrets = {d.key for d in ss.definitions() if d.secret}
    assert secrets == {
        "csv_import_sftp_password",
        "csv_import_sftp_private_key",
        "mistall_password",
        "parkmobile_password",
        "parkmobile_api_key",
        "mailgun_api_key",
        "mailgun_webhook_signing_key",
        "smtp_password",
        "stripe_publishable_key",
        "stripe_secret_key",
        "stripe_webhook_secret",
    }
    for d in ss.definitions():
        expected = {ss.Kind.BOOL: bool, ss.Kind.INT: int}.get(d.kind, str)
        assert type(d.default) is expected, d.key
        if d.kind is ss.Kind.CHOICE:
            assert d.default in {value for value, _ in d.choices}, d.key


def test_unset_settings_have_their_defaults(session, box):
    assert ss.get(session, box, "boot_require_overdue_paid") is False
    assert ss.get(session, box, "boot_universal_enabled") is False
    assert ss.get(session, box, "parking_logix_base_url") == "https://api.streetsoncloud.com"
    assert ss.get(session, box, "mail_backend") == "outbox"
    assert ss.get(session, box, "smtp_port") == 587
    assert ss.get(session, box, "mailgun_api_key") == ""


def test_values_come_back_typed(session, box, make_user):
    admin = make_user(Role.ADMIN)
    changed = ss.update(
        session,
        box,
        {
            "boot_require_overdue_paid": "on",
            "mistall_enabled": True,
            "smtp_port": "2525",
            "mistall_api_url": " https://mistall.example/api/ ",
            "system_reply_to_email": "parking@campus.test",
            "mail_backend": "smtp",
        },
        admin.id,
    )
    assert changed == [
        "system_reply_to_email",
        "mistall_enabled",
        "mistall_api_url",
        "boot_require_overdue_paid",
        "mail_backend",
        "smtp_port",
    ]
    values = ss.get_many(session, box, ["boot_require_overdue_paid", "mistall_enabled", "smtp_port"])
    assert values == {"boot_require_overdue_paid": True, "mistall_enabled": True, "smtp_port": 2525}
    assert ss.get(session, box, "mistall_api_url") == "https://mistall.example/api"
    row = session.get(SystemSetting, "smtp_port")
    assert row.updated_by_id == admin.id


def test_secrets_are_stored_encrypted(session, box):
    ss.update(session, box, {"mailgun_api_key": MAILGUN_KEY}, actor_id=None)
    session.flush()
    raw = session.scalar(select(SystemSetting.value).where(SystemSetting.key == "mailgun_api_key"))
    assert raw.startswith("enc:v1:")
    assert MAILGUN_KEY not in raw
    assert ss.get(session, box, "mailgun_api_key") == MAILGUN_KEY
    with pytest.raises(SecretError):
        SecretBox("some-other-secret-key").decrypt(raw)


def test_the_form_sees_secrets_masked_only(session, box):
    ss.update(session, box, {"mailgun_api_key": MAILGUN_KEY, "smtp_password": "short"}, actor_id=None)
    values = ss.form_values(session, box, "Third Party")
    assert values["mailgun_api_key"] == mask(MAILGUN_KEY) == "••••••••TEXT"
    assert values["parkmobile_api_key"] == ""
    assert "smtp_password" not in values
    assert ss.form_values(session, box, "Email")["smtp_password"] == "••••••••"
    everything = json.dumps(ss.form_values(session, box))
    assert MAILGUN_KEY not in everything and "short" not in everything


def test_an_empty_secret_input_keeps_the_secret_and_clear_removes_it(session, box):
    ss.update(session, box, {"parkmobile_api_key": "pm-secret-value-1234"}, actor_id=None)
    assert ss.update(session, box, {"parkmobile_api_key": "", "mistall_password": None}, actor_id=None) == []
    assert ss.get(session, box, "parkmobile_api_key") == "pm-secret-value-1234"
    assert ss.update(session, box, {"parkmobile_api_key": ""}, None, clear=["parkmobile_api_key"]) == [
        "parkmobile_api_key"
    ]
    session.flush()
    assert ss.get(session, box, "parkmobile_api_key") == ""
    assert session.get(SystemSetting, "parkmobile_api_key") is None


def test_retyping_the_same_secret_is_not_a_change(session, box):
    ss.update(session, box, {"smtp_password": "same-password"}, actor_id=None)
    assert ss.update(session, box, {"smtp_password": "same-password"}, actor_id=None) == []
    session.flush()
    assert len(audit.recent(session)) == 1


def test_invalid_input_reports_every_field_and_changes_nothing(session, box):
    ss.update(session, box, {"site_name": "Campus Parking"}, actor_id=None)
    session.flush()
    with pytest.raises(ValidationFailed) as failed:
        ss.update(
            session,
            box,
            {
                "site_name": "Renamed",
                "system_reply_to_email": "not-an-email",
                "mistall_api_url": "ftp://mistall.example",
                "parkmobile_base_url": "parkmobile.example",
                "smtp_port": "70000",
                "boot_universal_enabled": "perhaps",
                "mail_backend": "carrier-pigeon",
                "no_such_setting": "x",
                "mistall_password": "new-password",
            },
            actor_id=None,
            clear=["mistall_password", "site_name"],
        )
    assert set(failed.value.errors) == {
        "system_reply_to_email",
        "mistall_api_url",
        "parkmobile_base_url",
        "smtp_port",
        "boot_universal_enabled",
        "mail_backend",
        "no_such_setting",
        "mistall_password",
        "site_name",
    }
    assert failed.value.errors["system_reply_to_email"] == "not a valid e-mail address"
    assert failed.value.errors["no_such_setting"] == "unknown setting"
    session.flush()
    assert ss.get(session, box, "site_name") == "Campus Parking"
    assert ss.get(session, box, "mistall_password") == ""
    assert session.scalars(select(SystemSetting.key)).all() == ["site_name"]
    assert len(audit.recent(session)) == 1


def test_an_empty_value_restores_the_default(session, box):
    ss.update(session, box, {"parking_logix_base_url": "https://sensors.example"}, actor_id=None)
    assert ss.update(session, box, {"parking_logix_base_url": ""}, actor_id=None) == [
        "parking_logix_base_url"
    ]
    session.flush()
    assert ss.get(session, box, "parking_logix_base_url") == "https://api.streetsoncloud.com"
    assert session.get(SystemSetting, "parking_logix_base_url") is None


def test_one_audit_entry_per_save_without_secret_values(session, box, make_user):
    admin = make_user(Role.ADMIN)
    ss.update(session, box, {"mailgun_api_key": MAILGUN_KEY}, admin.id)
    ss.update(
        session,
        box,
        {"mailgun_domain": "mg.campus.test", "mailgun_api_key": MAILGUN_KEY + "-2", "site_name": "ParkOps"},
        admin.id,
        clear=[],
    )
    ss.update(session, box, {}, admin.id, clear=["mailgun_api_key"])
    session.flush()
    entries = audit.recent(session, entity_type="system_settings")
    assert [e.changes for e in entries] == [
        {"mailgun_api_key": "cleared"},
        {"mailgun_domain": {"old": "", "new": "mg.campus.test"}, "mailgun_api_key": "changed"},
        {"mailgun_api_key": "changed"},
    ]
    assert {e.actor_id for e in entries} == {admin.id}
    raw_rows = json.dumps([row.changes for row in session.scalars(select(AuditLog))])
    assert MAILGUN_KEY not in raw_rows and "PLAINTEXT" not in raw_rows


def test_a_secret_from_a_rotated_key_is_flagged_and_can_be_replaced(session, box):
    session.add(SystemSetting(key="smtp_password", value=SecretBox("old-key").encrypt("old-password")))
    session.flush()
    assert ss.form_values(session, box, "Email")["smtp_password"] == ss.UNREADABLE
    with pytest.raises(SecretError):
        ss.get(session, box, "smtp_password")
    assert ss.update(session, box, {"smtp_password": "new-password"}, actor_id=None) == ["smtp_password"]
    assert ss.get(session, box, "smtp_password") == "new-password"


def test_the_currency_is_three_letters_kept_upper_case_and_cad_by_default(core, box):
    with core.db.session() as s:
        assert ss.currency(s) == "CAD"
        with pytest.raises(ValidationFailed) as refused:
            ss.update(s, box, {"currency": "dollars"}, actor_id=None)
        assert refused.value.errors == {"currency": "three letters, such as CAD or USD"}
        ss.update(s, box, {"currency": " usd "}, actor_id=None)
        assert ss.currency(s) == "USD" and ss.get(s, box, "currency") == "USD"


@pytest.mark.parametrize("code", ["JPY", "krw", "CLP", "KWD", "BHD"])
def test_a_currency_without_hundredths_is_refused_so_a_price_is_never_charged_100_times_over(core, box, code):
    """Amounts are integer cents, sent to Stripe as the currency's minor unit: in yen (no minor
    unit) a $25.00 permit (2500) would be charged 2,500 yen, in dinars (thousandths) 2.500."""
    with core.db.session() as s:
        with pytest.raises(ValidationFailed) as refused:
            ss.update(s, box, {"currency": code}, actor_id=None)
        assert "hundredths" in refused.value.errors["currency"]
        assert ss.currency(s) == "CAD"


def test_sftp_keys_are_checked_when_saved_and_the_private_key_is_a_masked_secret(session, box):
    key = asyncssh.generate_private_key("ssh-ed25519")
    pasted = key.export_private_key("openssh").decode("ascii").replace("\n", "")  # as a browser pastes it
    host = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode("ascii")
    with pytest.raises(ValidationFailed) as refused:
        ss.update(
            session,
            box,
            {
                "csv_import_sftp_host": "sftp://campus.edu:22",
                "csv_import_sftp_host_key": "not a key",
                "csv_import_sftp_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----abc"
                "-----END OPENSSH PRIVATE KEY-----",
            },
            actor_id=None,
        )
    assert set(refused.value.errors) == {
        "csv_import_sftp_host", "csv_import_sftp_host_key", "csv_import_sftp_private_key",
    }  # fmt: skip
    assert "host name or IP address only" in refused.value.errors["csv_import_sftp_host"]
    ss.update(
        session,
        box,
        {
            "csv_import_sftp_host": "sftp.campus.edu",
            "csv_import_sftp_host_key": f"[sftp.campus.edu]:2222 {host}",
            "csv_import_sftp_private_key": pasted,
        },
        actor_id=None,
    )
    stored = session.scalar(
        select(SystemSetting.value).where(SystemSetting.key == "csv_import_sftp_private_key")
    )
    assert "PRIVATE KEY" not in stored  # encrypted at rest
    shown = ss.form_values(session, box, "Third Party")
    assert (
        shown["csv_import_sftp_private_key"].startswith("•" * 8)
        and "PRIVATE" not in shown["csv_import_sftp_private_key"]
    )
    assert shown["csv_import_sftp_host_key"] == " ".join(host.split()[:2])
    restored = ss.get(session, box, "csv_import_sftp_private_key")
    assert restored.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert asyncssh.import_private_key(restored).public_data == key.public_data
