"""/admin/sso (admins only) and the login page's choice between SSO and the password form."""

from __future__ import annotations

import json
import re
import time

import dash
import pytest
from sqlalchemy import select
from werkzeug import Response

from dashboard.services import sso
from models import AuditLog, LoginMethod, Role, UserType
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press
from tests.saml_idp import TestIdp, configure


@pytest.fixture
def user_types(core) -> None:
    with core.db.session() as session:
        session.add_all(
            [
                UserType(code="student", name="Student", login_method=LoginMethod.SSO),
                UserType(code="staff", name="Staff", login_method=LoginMethod.SSO),
                UserType(code="public", name="Public", login_method=LoginMethod.LOCAL),
            ]
        )


@pytest.fixture
def idp(tmp_path) -> TestIdp:
    return TestIdp(tmp_path, "http://localhost")


def test_the_page_is_for_admins_only(login_as):
    assert login_as(Role.GUEST).get("/admin/sso").status_code == 302
    assert login_as(Role.MANAGER).get("/admin/sso").status_code == 403
    assert login_as(Role.ADMIN).get("/admin/sso").status_code == 200


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.MANAGER, 403)])
def test_its_callbacks_refuse_lower_roles(app, login_as, role, status, core, idp, user_types):
    configure(core, idp)
    client = login_as(role)
    fill = dash_post(client, app, find_output(app, "sso-methods.children"), [0])
    saved = press(client, app, "sso-status.children", "sso-save", {"sso-enabled": False})
    for response in (fill, saved):
        assert response.status_code == status
        assert idp.entity_id.encode() not in response.data
    with core.db.session() as session:
        assert sso.load(session).enabled is True


def test_the_form_shows_the_settings_but_never_the_private_key(app, login_as, core, idp, user_types):
    configure(core, idp)
    out = outputs_of(dash_post(login_as(Role.ADMIN), app, find_output(app, "sso-methods.children"), [0]))
    assert out["sso-idp-entity-id"]["value"] == idp.entity_id
    assert out["sso-institution-name"]["value"] == "Campus"
    assert out["sso-sp-key"]["value"] == ""
    assert "stored (never shown)" in out["sso-sp-key-note"]["children"]
    assert "PRIVATE KEY" not in json.dumps(out)
    assert '"student"' in json.dumps(out["sso-methods"]["children"])


def _read(client, app, trigger: str, values: dict[str, str]) -> dict:
    return outputs_of(press(client, app, "sso-metadata-status.children", trigger, values))


def test_pasted_metadata_fills_the_idp_fields(app, login_as, idp):
    out = _read(login_as(Role.ADMIN), app, "sso-parse", {"sso-metadata-xml": idp.metadata()})
    assert out["sso-idp-entity-id"]["value"] == idp.entity_id
    assert out["sso-idp-sso-url"]["value"] == idp.sso_url
    assert out["sso-idp-slo-url"]["value"] == idp.slo_url
    assert out["sso-idp-cert"]["value"] == idp.cert
    assert out["sso-idp-cert-next"]["value"] == ""
    assert "Review the fields" in json.dumps(out["sso-metadata-status"])


def test_metadata_with_two_signing_certificates_is_a_rollover(idp, tmp_path):
    (tmp_path / "next").mkdir()
    upcoming = TestIdp(tmp_path / "next", "http://localhost")
    xml = idp.metadata()
    descriptor = re.search(r"<ns0:KeyDescriptor.*?</ns0:KeyDescriptor>", xml, re.S).group(0)
    second = re.sub(r"(<ns2:X509Certificate>)[^<]+", lambda m: m.group(1) + upcoming.cert, descriptor)
    found = sso.parse_idp_metadata(xml.replace(descriptor, descriptor + second, 1))
    assert found.certs == (idp.cert, upcoming.cert)


def test_metadata_is_fetched_from_its_url(app, login_as, idp, httpserver):
    httpserver.expect_request("/idp/metadata").respond_with_data(
        idp.metadata(), content_type="application/xml"
    )
    out = _read(
        login_as(Role.ADMIN), app, "sso-fetch", {"sso-idp-metadata-url": httpserver.url_for("/idp/metadata")}
    )
    assert out["sso-idp-entity-id"]["value"] == idp.entity_id


def test_oversized_or_broken_metadata_is_refused_with_a_message(app, login_as, httpserver):
    admin = login_as(Role.ADMIN)
    httpserver.expect_request("/big").respond_with_data("<x>" + "a" * (sso.METADATA_MAX_BYTES + 10) + "</x>")
    out = _read(admin, app, "sso-fetch", {"sso-idp-metadata-url": httpserver.url_for("/big")})
    assert "larger than 1024 KiB" in json.dumps(out)
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    out = _read(admin, app, "sso-fetch", {"sso-idp-metadata-url": httpserver.url_for("/gone")})
    assert "could not fetch the metadata (HTTPError)" in json.dumps(out)
    out = _read(admin, app, "sso-parse", {"sso-metadata-xml": "<html>not metadata</html>"})
    assert "Metadata not read" in json.dumps(out)
    assert "sso-idp-entity-id" not in out


def test_a_slow_metadata_server_times_out(httpserver, monkeypatch):
    monkeypatch.setattr(sso, "METADATA_TIMEOUT", 0.3)

    def slow(_request) -> Response:
        time.sleep(1)
        return Response("<x/>")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(sso.ValidationFailed) as refused:
        sso.fetch_idp_metadata(httpserver.url_for("/slow"))
    assert "Timeout" in refused.value.errors["metadata_url"]


def _form(idp: TestIdp, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "sso-enabled": True,
        "sso-institution-name": "Campus",
        "sso-idp-entity-id": idp.entity_id,
        "sso-idp-sso-url": idp.sso_url,
        "sso-idp-cert": idp.cert,
        "sso-jit-create": True,
        "sso-sync": "once",
        "sso-clock-skew-seconds": 90,
        "sso-generate": True,
        "sso-attr-email": "mail",
    }
    values.update(changes)
    return values


def save(client, app, form: dict[str, object], methods: dict[str, str] | None = None):
    """Press Save as the browser does, with the login-method rows the fill callback made."""
    output = find_output(app, "sso-status.children")
    entry = callback_entry(app, output)
    state = []
    for spec in entry["state"]:
        if spec["id"].startswith("{"):
            rows = (methods or {}).items()
            state.append(
                [{"id": {"code": c, "type": "sso-method"}, "property": "value", "value": v} for c, v in rows]
            )
        else:
            state.append(dict(spec, value=form.get(spec["id"])))
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [{"id": "sso-save", "property": "n_clicks", "value": 1}],
        "state": state,
        "changedPropIds": ["sso-save.n_clicks"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_saving_stores_the_settings_a_new_key_pair_and_the_login_methods(
    app, login_as, core, idp, user_types
):
    admin = login_as(Role.ADMIN)
    out = outputs_of(save(admin, app, _form(idp), {"student": "sso", "public": "sso"}))
    assert "Saved" in json.dumps(out["sso-status"])
    assert "login method of public" in json.dumps(out["sso-status"])
    with core.db.session() as session:
        config = sso.load(session)
        assert (config.enabled, config.sync_every_login, config.clock_skew_seconds) == (True, False, 90)
        assert sso.has_private_key(session) and config.sp_cert
        methods = {code: method for code, _name, method in sso.user_type_methods(session)}
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "sso.update"))
        assert entry.changes["sp_private_key"] == "changed"
        assert "PRIVATE" not in json.dumps(entry.changes)
    assert methods == {"student": LoginMethod.SSO, "staff": LoginMethod.SSO, "public": LoginMethod.SSO}
    assert admin.get("/sso/metadata").status_code == 200
    unchanged = _form(idp, **{"sso-generate": False, "sso-sp-cert": config.sp_cert})
    again = outputs_of(save(admin, app, unchanged, {"student": "sso", "public": "sso"}))
    assert "Nothing changed" in json.dumps(again)


def test_a_pasted_private_key_must_match_the_certificate(app, login_as, core, idp):
    key, cert = sso.generate_sp_keypair()
    other_key, _other_cert = sso.generate_sp_keypair()
    admin = login_as(Role.ADMIN)
    form = _form(idp, **{"sso-generate": False, "sso-sp-cert": cert, "sso-sp-key": other_key})
    assert "not a PEM private key matching" in json.dumps(outputs_of(save(admin, app, form)))
    form["sso-sp-key"] = key
    assert "Saved" in json.dumps(outputs_of(save(admin, app, form)))
    with core.db.session() as session:
        assert sso._private_key(session, core.secrets) == key.strip()  # noqa: SLF001


def test_bad_values_are_refused_field_by_field(app, login_as, core, idp, user_types):
    admin = login_as(Role.ADMIN)
    form = _form(
        idp, **{"sso-idp-sso-url": "ftp://x", "sso-clock-skew-seconds": 5000, "sso-user-type-map": "student"}
    )
    out = outputs_of(save(admin, app, form, {"student": "password"}))
    text = json.dumps(out["sso-status"])
    assert "Nothing was saved" in text
    assert "IdP single sign-on URL: must be an http(s) URL" in text
    assert "Allowed clock skew: between 0 and 600 seconds" in text
    assert "write it as" in text
    assert "'password' is not a login method" not in text  # the SSO form's errors come first
    with core.db.session() as session:
        assert sso.load(session).enabled is False


def _offer(client, app) -> dict:
    return outputs_of(dash_post(client, app, find_output(app, "login-sso.children"), ["/permits"]))


def test_the_login_page_offers_sso_and_the_password_form_by_user_type(app, client, core, idp, user_types):
    out = _offer(client, app)
    assert out["login-sso"]["children"] is None and out["login-local"]["open"] is True
    configure(core, idp)
    out = _offer(client, app)
    button = out["login-sso"]["children"]["props"]
    assert button["children"] == "Sign in with Campus SSO"
    assert button["href"] == "/sso/login?next=%2Fpermits"
    assert out["login-local"]["open"] is True  # the public user type keeps its password
    with core.db.session() as session:
        sso.set_login_methods(session, {"public": "sso"}, None)
    assert _offer(client, app)["login-local"]["open"] is False  # folded, still there for admins


def test_the_login_page_says_an_sso_account_must_use_sso(app):
    layout = dash.page_registry["pages.login"]["layout"]
    shown = json.dumps(layout(error="sso").to_plotly_json(), default=str)
    assert "signs in through your institution's single sign-on: use the SSO button" in shown
