"""SAML 2.0 single sign-on (service provider side), on python3-saml in strict mode.

What python3-saml checks for us: the XML signature (assertions must be signed, RSA-SHA256 and
SHA-256 digests; SHA-1 is refused), audience, destination and recipient, the time window,
``InResponseTo``. What it leaves to us, done here:

- **Request ids on the server** (``saml_message_ids``): the session cookie is SameSite=Lax, so the
  IdP's cross-site POST to the ACS arrives without it; the AuthnRequest id we sent is looked up by
  the response's ``InResponseTo`` instead. A response to no request of ours is refused
  (unsolicited, IdP-initiated responses included: they are the easiest to replay).
- **Replay**: every accepted assertion id is kept until it expires; seeing it again is refused.
- **Clock skew**: python3-saml reads the tolerance from a class constant
  (``OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT``), so it is set from the site's setting before
  each validation. It is process-wide, but every request sets it to the same site-wide value.
- **Accounts**: attribute mapping, just-in-time creation and sync (``sign_in``).

Every refusal is an ``SsoRefused`` with a code (for the log) and a sentence (for the person).

Why this module is long: the SAML flow (metadata, login, ACS, logout) and the checks python3-saml
leaves to us (request ids, replay, clock skew, attribute mapping) are one security boundary,
reviewed as one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError
from dashboard.db import rows_matched
from dashboard.services import audit
from dashboard.services.errors import ValidationFailed
from dashboard.services.users import EMAIL_RE, UserInfo, describe
from models import AuthSource, LoginMethod, Role, SamlMessageId, SsoConfig, User, UserType, utcnow

log = logging.getLogger(__name__)

REQUEST = "request"
ASSERTION = "assertion"
LOGOUT = "logout"
# How long a person may take at the IdP's login screen before the answer is refused.
REQUEST_TTL = timedelta(minutes=10)
# An assertion id is kept at least this long, even if the assertion claims to expire sooner.
MIN_ASSERTION_TTL = timedelta(hours=1)
METADATA_TIMEOUT = 10  # seconds, connect and read
METADATA_MAX_BYTES = 1024 * 1024
MAX_SKEW = 600
MAX_MESSAGE_ID = 200  # the column's length (SAML ids are about 40 characters)
AUDIT_ENTITY = "sso_config"
MAX_TEXT = 20_000  # certificates, the user type map
_MAX_LENGTHS = {
    "institution_name": 120,
    **dict.fromkeys(("idp_metadata_url", "idp_entity_id", "idp_sso_url", "idp_slo_url"), 500),
    **dict.fromkeys(
        (
            "attr_email",
            "attr_first_name",
            "attr_last_name",
            "attr_external_id",
            "attr_user_type",
            "attr_special",
        ),
        200,
    ),
}

_BINDING_POST = OneLogin_Saml2_Constants.BINDING_HTTP_POST
_BINDING_REDIRECT = OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT

# What a person reads when python3-saml refuses a response, by its validation code.
_REASONS: dict[int, tuple[str, str]] = {
    OneLogin_Saml2_ValidationError.NO_SIGNED_ASSERTION: ("unsigned", "the sign-in answer was not signed"),
    OneLogin_Saml2_ValidationError.NO_SIGNATURE_FOUND: ("unsigned", "the sign-in answer was not signed"),
    OneLogin_Saml2_ValidationError.INVALID_SIGNATURE: (
        "tampered",
        "the sign-in answer's signature does not match (it was altered, or signed with another key)",
    ),
    OneLogin_Saml2_ValidationError.INVALID_SIGNED_ELEMENT: ("tampered", "the signed part was altered"),
    OneLogin_Saml2_ValidationError.ASSERTION_EXPIRED: ("expired", "the sign-in answer has expired"),
    OneLogin_Saml2_ValidationError.SESSION_EXPIRED: ("expired", "the sign-in answer has expired"),
    OneLogin_Saml2_ValidationError.RESPONSE_EXPIRED: ("expired", "the sign-in answer has expired"),
    OneLogin_Saml2_ValidationError.ASSERTION_TOO_EARLY: ("too_early", "the sign-in answer is not valid yet"),
    OneLogin_Saml2_ValidationError.WRONG_AUDIENCE: (
        "wrong_audience",
        "the sign-in answer was meant for another site",
    ),
    OneLogin_Saml2_ValidationError.WRONG_DESTINATION: (
        "wrong_recipient",
        "the sign-in answer was addressed to another site",
    ),
    OneLogin_Saml2_ValidationError.WRONG_SUBJECTCONFIRMATION: (
        "wrong_recipient",
        "the sign-in answer was addressed to another site, or has expired",
    ),
    OneLogin_Saml2_ValidationError.WRONG_ISSUER: (
        "wrong_issuer",
        "the sign-in answer came from another identity provider",
    ),
    OneLogin_Saml2_ValidationError.WRONG_INRESPONSETO: (
        "unknown_request",
        "the sign-in answer is for another request",
    ),
    OneLogin_Saml2_ValidationError.STATUS_CODE_IS_NOT_SUCCESS: (
        "idp_failed",
        "the identity provider did not sign you in",
    ),
    OneLogin_Saml2_ValidationError.DEPRECATED_SIGNATURE_METHOD: (
        "weak_signature",
        "the answer uses a weak signature (SHA-1)",
    ),
    OneLogin_Saml2_ValidationError.DEPRECATED_DIGEST_METHOD: (
        "weak_signature",
        "the answer uses a weak signature (SHA-1)",
    ),
}


class SsoRefused(Exception):
    """A sign-in (or logout) through the IdP that must not go through; ``code`` for the log,
    ``message`` for the person."""

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code = code
        self.message = message
        self.detail = detail


class NotConfigured(SsoRefused):
    def __init__(self) -> None:
        super().__init__("not_configured", "Single sign-on is not set up on this site.")


@dataclass(frozen=True)
class SsoSettings:
    """The SSO configuration as plain values (the SP private key decrypted only where needed)."""

    enabled: bool = False
    institution_name: str = ""
    idp_metadata_url: str = ""
    idp_entity_id: str = ""
    idp_sso_url: str = ""
    idp_slo_url: str = ""
    idp_cert: str = ""
    idp_cert_next: str = ""
    sp_cert: str = ""
    clock_skew_seconds: int = 120
    jit_create: bool = True
    sync_every_login: bool = True
    attr_email: str = ""
    attr_first_name: str = ""
    attr_last_name: str = ""
    attr_external_id: str = ""
    attr_user_type: str = ""
    user_type_map: str = ""
    attr_special: str = ""
    special_values: str = ""

    @property
    def ready(self) -> bool:
        """Enabled and complete enough to send someone to the IdP."""
        return bool(
            self.enabled and self.idp_entity_id and self.idp_sso_url and self.idp_cert and self.sp_cert
        )


_FIELDS = tuple(f.name for f in fields(SsoSettings))


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str
    certs: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """What the IdP says about a person, after the attribute mapping."""

    email: str
    first_name: str | None
    last_name: str | None
    external_id: str | None
    user_type: str | None
    special: bool | None


@dataclass(frozen=True)
class SsoLogin:
    """A person the IdP signed in: the account, and the NameID the IdP knows them by (for logout)."""

    user: UserInfo
    name_id: str


@dataclass(frozen=True)
class LoginOptions:
    """What the login page offers: the SSO button (with the institution's name), the password form."""

    sso: bool
    institution_name: str
    password: bool


# ---------------------------------------------------------------------------------------------
# Configuration


def _row(session: Session) -> SsoConfig:
    row = session.get(SsoConfig, 1)
    if row is None:
        row = SsoConfig(id=1)
        session.add(row)
        session.flush()
    return row


def load(session: Session) -> SsoSettings:
    row = session.get(SsoConfig, 1)
    if row is None:
        return SsoSettings()
    return SsoSettings(**{name: getattr(row, name) for name in _FIELDS})


def has_private_key(session: Session) -> bool:
    row = session.get(SsoConfig, 1)
    return bool(row and row.sp_private_key)


def _private_key(session: Session, box: SecretBox) -> str:
    row = session.get(SsoConfig, 1)
    try:
        return box.decrypt(row.sp_private_key if row else "")
    except SecretError as exc:
        raise SsoRefused("sp_key_unreadable", "Single sign-on is not set up on this site.", str(exc)) from exc


def save(
    session: Session,
    box: SecretBox,
    values: dict[str, Any],
    actor_id: int | None,
    *,
    private_key: str = "",
    generate_key: bool = False,
) -> list[str]:
    """Validate and store the SSO form; return the names of what changed (audited, the key as
    "changed" only). ``private_key`` (PEM) replaces the SP key and needs ``sp_cert`` to match it;
    ``generate_key`` makes a new key pair instead."""
    current = load(session)
    merged = {name: values.get(name, getattr(current, name)) for name in _FIELDS}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name in _FIELDS:
        value = merged[name]
        default = getattr(SsoSettings(), name)
        if isinstance(default, bool):
            cleaned[name] = bool(value)
        elif isinstance(default, int):
            try:
                number = int(value)
            except (TypeError, ValueError):
                errors[name] = "a whole number of seconds"
                continue
            if not 0 <= number <= MAX_SKEW:
                errors[name] = f"between 0 and {MAX_SKEW} seconds"
            cleaned[name] = number
        else:
            cleaned[name] = (value or "").strip() if isinstance(value, str) else ""
            limit = _MAX_LENGTHS.get(name, MAX_TEXT)
            if len(cleaned[name]) > limit:
                errors[name] = f"at most {limit} characters"
    for name in ("idp_sso_url", "idp_slo_url", "idp_metadata_url"):
        if cleaned.get(name) and not cleaned[name].startswith(("https://", "http://")):
            errors[name] = "must be an http(s) URL"
    for name in ("idp_cert", "idp_cert_next", "sp_cert"):
        if cleaned.get(name):
            try:
                cleaned[name] = _normalise_cert(cleaned[name])
            except ValueError:
                errors[name] = "not an X.509 certificate (PEM or base64)"
    try:
        _parse_type_map(cleaned["user_type_map"], session)
    except ValueError as exc:
        errors["user_type_map"] = str(exc)
    new_key = ""
    if generate_key:
        new_key, cleaned["sp_cert"] = generate_sp_keypair()
    elif private_key.strip():
        new_key = private_key.strip()
        if len(new_key) > MAX_TEXT or not _key_matches_cert(new_key, cleaned["sp_cert"]):
            errors["sp_private_key"] = "not a PEM private key matching the SP certificate"
    if cleaned["enabled"]:
        for name, label in (
            ("idp_entity_id", "IdP entity id"),
            ("idp_sso_url", "IdP SSO URL"),
            ("idp_cert", "IdP certificate"),
        ):
            if not cleaned[name]:
                errors.setdefault(name, f"{label} is needed to turn SSO on")
        if not cleaned["sp_cert"] or not (new_key or has_private_key(session)):
            errors.setdefault("sp_cert", "an SP key pair is needed to turn SSO on (generate one)")
    if errors:
        raise ValidationFailed(errors)
    row = _row(session)
    changed = [name for name in _FIELDS if getattr(row, name) != cleaned[name]]
    for name in changed:
        setattr(row, name, cleaned[name])
    if new_key:
        row.sp_private_key = box.encrypt(new_key)
        changed.append("sp_private_key")
    if changed:
        audit.record(
            session,
            actor_id=actor_id,
            action="sso.update",
            entity_type=AUDIT_ENTITY,
            entity_id="1",
            changes={name: "changed" if name == "sp_private_key" else cleaned.get(name) for name in changed},
        )
    return changed


def _normalise_cert(text: str) -> str:
    """A certificate as python3-saml wants it: base64 DER on one line (PEM armour removed)."""
    body = "".join(line.strip() for line in text.splitlines() if line.strip() and "-----" not in line)
    pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n"
    x509.load_pem_x509_certificate(pem.encode())
    return body


def _key_matches_cert(key_pem: str, cert_b64: str) -> bool:
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        pem = f"-----BEGIN CERTIFICATE-----\n{cert_b64}\n-----END CERTIFICATE-----\n"
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.DER, spki) == cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    )


def generate_sp_keypair(common_name: str = "ParkOps SAML SP") -> tuple[str, str]:
    """A new RSA-2048 key (PEM) and a self-signed certificate for it (base64 DER), valid ten
    years: SAML metadata pins the key itself, so no CA is involved."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, _normalise_cert(cert_pem)


def parse_idp_metadata(xml: str) -> IdpMetadata:
    """Entity id, SSO/SLO URLs (redirect binding) and signing certificates (two during a
    rollover) from the IdP's metadata; ``ValidationFailed`` if it is not usable metadata."""
    if not xml or not xml.strip():
        raise ValidationFailed({"metadata": "paste the IdP's metadata XML"})
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml, required_sso_binding=_BINDING_REDIRECT)
    except Exception as exc:  # untrusted XML: lxml, defusedxml and python3-saml raise their own kinds
        raise ValidationFailed({"metadata": f"not SAML metadata ({type(exc).__name__})"}) from exc
    idp = parsed.get("idp") or {}
    certs: list[str] = []
    multi = idp.get("x509certMulti") or {}
    for cert in [idp.get("x509cert"), *multi.get("signing", [])]:
        if cert and cert not in certs:
            certs.append(cert)
    sso_url = (idp.get("singleSignOnService") or {}).get("url", "")
    if not idp.get("entityId") or not sso_url:
        raise ValidationFailed(
            {"metadata": "no IdP entity with an HTTP-Redirect SSO service in this metadata"}
        )
    if not certs:
        raise ValidationFailed({"metadata": "the metadata holds no signing certificate"})
    return IdpMetadata(
        entity_id=idp["entityId"],
        sso_url=sso_url,
        slo_url=(idp.get("singleLogoutService") or {}).get("url", ""),
        certs=tuple(_normalise_cert(c) for c in certs[:2]),
    )


def fetch_idp_metadata(url: str) -> IdpMetadata:
    """Download the IdP's metadata (timeout and size limit: the URL is typed by an admin, but the
    server at it is not ours) and parse it."""
    if not url.startswith(("https://", "http://")):
        raise ValidationFailed({"metadata_url": "must be an http(s) URL"})
    try:
        with requests.get(url, timeout=METADATA_TIMEOUT, stream=True) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body.extend(chunk)
                if len(body) > METADATA_MAX_BYTES:
                    raise ValidationFailed(
                        {"metadata_url": f"the metadata is larger than {METADATA_MAX_BYTES // 1024} KiB"}
                    )
    except requests.RequestException as exc:
        log.warning("could not fetch IdP metadata from %s: %s", url, exc)
        raise ValidationFailed(
            {"metadata_url": f"could not fetch the metadata ({type(exc).__name__})"}
        ) from exc
    return parse_idp_metadata(body.decode("utf-8", errors="replace"))


def _parse_type_map(text: str, session: Session) -> dict[str, str]:
    """``value = user type code`` lines: which IdP attribute value gives which user type."""
    known = set(session.scalars(select(UserType.code)))
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value, sep, code = line.partition("=")
        if not sep or not value.strip() or not code.strip():
            raise ValueError(f"line {number}: write it as 'attribute value = user type code'")
        if code.strip() not in known:
            raise ValueError(f"line {number}: unknown user type {code.strip()!r}")
        mapping[value.strip().lower()] = code.strip()
    return mapping


# ---------------------------------------------------------------------------------------------
# Per user type login method


def user_type_methods(session: Session) -> list[tuple[str, str, LoginMethod]]:
    """(code, name, login method) of every user type, for the admin form."""
    rows = session.execute(
        select(UserType.code, UserType.name, UserType.login_method).order_by(UserType.name)
    )
    return [(code, name, LoginMethod(method)) for code, name, method in rows]


def set_login_methods(session: Session, methods: dict[str, str], actor_id: int | None) -> list[str]:
    """Set the login method of user types by code; return the codes that changed (audited)."""
    changed: list[str] = []
    for code, method in methods.items():
        try:
            wanted = LoginMethod(method if isinstance(method, str) else "")
        except ValueError:
            raise ValidationFailed({"login_method": f"{method!r} is not a login method"}) from None
        row = session.scalar(select(UserType).where(UserType.code == code))
        if row is None:
            raise ValidationFailed({"login_method": f"unknown user type {code!r}"})
        if row.login_method != wanted:
            row.login_method = wanted
            changed.append(code)
    if changed:
        audit.record(
            session,
            actor_id=actor_id,
            action="user_types.login_method",
            entity_type="user_types",
            entity_id=None,
            changes={code: methods[code] for code in changed},
        )
    return changed


def login_options(session: Session) -> LoginOptions:
    """SSO when it is ready; the password form unless every user type signs in through SSO (it
    is then still there, folded, for accounts without a user type such as administrators)."""
    config = load(session)
    methods = set(session.scalars(select(UserType.login_method)))
    return LoginOptions(
        sso=config.ready,
        institution_name=config.institution_name or "institution",
        password=not (config.ready and methods == {LoginMethod.SSO}),
    )


def sso_only(session: Session, email: str) -> bool:
    """The account signs in through SSO only: its user type says so, or it was made by SSO and
    has no password. The password login refuses it and points to SSO."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        return False
    if user.user_type is not None and user.user_type.login_method == LoginMethod.SSO:
        return True
    return user.auth_source == AuthSource.SAML and not user.password_hash


# ---------------------------------------------------------------------------------------------
# The SAML exchange


@dataclass(frozen=True)
class RequestData:
    """The parts of the HTTP request python3-saml needs (it checks Destination against them)."""

    https: bool
    host: str
    path: str
    get: dict[str, str]
    post: dict[str, str]
    query_string: str = ""

    def as_onelogin(self) -> dict[str, Any]:
        return {
            "https": "on" if self.https else "off",
            "http_host": self.host,
            "script_name": self.path,
            "get_data": self.get,
            "post_data": self.post,
            "query_string": self.query_string,
        }


def sp_urls(base_url: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {"entity_id": f"{base}/sso/metadata", "acs": f"{base}/sso/acs", "sls": f"{base}/sso/sls"}


def onelogin_settings(config: SsoSettings, base_url: str, private_key: str = "") -> dict[str, Any]:
    """python3-saml's settings: strict, signed assertions, SHA-256 only."""
    urls = sp_urls(base_url)
    idp: dict[str, Any] = {
        "entityId": config.idp_entity_id,
        "singleSignOnService": {"url": config.idp_sso_url, "binding": _BINDING_REDIRECT},
    }
    if config.idp_slo_url:
        idp["singleLogoutService"] = {"url": config.idp_slo_url, "binding": _BINDING_REDIRECT}
    certs = [c for c in (config.idp_cert, config.idp_cert_next) if c]
    idp["x509certMulti"] = {"signing": certs, "encryption": certs[:1]}
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": urls["entity_id"],
            "assertionConsumerService": {"url": urls["acs"], "binding": _BINDING_POST},
            "singleLogoutService": {"url": urls["sls"], "binding": _BINDING_REDIRECT},
            "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_UNSPECIFIED,
            "x509cert": config.sp_cert,
            "privateKey": private_key,
        },
        "idp": idp,
        "security": {
            "authnRequestsSigned": bool(private_key),
            "logoutRequestSigned": bool(private_key),
            "logoutResponseSigned": bool(private_key),
            "wantAssertionsSigned": True,
            "wantMessagesSigned": False,
            "wantNameId": True,
            "wantAttributeStatement": False,
            "requestedAuthnContext": False,
            "signMetadata": False,
            "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
            "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
            "rejectDeprecatedAlgorithm": True,
        },
    }


def sp_metadata(session: Session, base_url: str) -> str:
    """This site's SP metadata XML, for the IdP's administrators."""
    config = load(session)
    if not config.sp_cert:
        raise NotConfigured()
    settings = OneLogin_Saml2_Settings(onelogin_settings(config, base_url), sp_validation_only=True)
    metadata = settings.get_sp_metadata()
    return metadata.decode() if isinstance(metadata, bytes) else metadata


@dataclass(frozen=True)
class _Exchange:
    auth: OneLogin_Saml2_Auth
    config: SsoSettings
    settings: dict[str, Any]


def _auth(session: Session, box: SecretBox, request: RequestData, base_url: str) -> _Exchange:
    config = load(session)
    if not config.ready:
        raise NotConfigured()
    settings = onelogin_settings(config, base_url, _private_key(session, box))
    OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT = config.clock_skew_seconds
    return _Exchange(OneLogin_Saml2_Auth(request.as_onelogin(), old_settings=settings), config, settings)


def _remember(session: Session, kind: str, message_id: str, expires_at: datetime) -> None:
    now = utcnow()
    session.execute(delete(SamlMessageId).where(SamlMessageId.expires_at < now))
    session.add(SamlMessageId(kind=kind, message_id=message_id, expires_at=expires_at))
    session.flush()


def start_login(session: Session, box: SecretBox, request: RequestData, base_url: str, return_to: str) -> str:
    """The IdP URL (signed AuthnRequest, redirect binding) to send the browser to; the request id
    is kept on the server for the ACS."""
    auth = _auth(session, box, request, base_url).auth
    url = auth.login(return_to=return_to)
    _remember(session, REQUEST, auth.get_last_request_id(), utcnow() + REQUEST_TTL)
    return url


def _read_response(settings: dict[str, Any], saml_response: str) -> OneLogin_Saml2_Response:
    try:
        return OneLogin_Saml2_Response(OneLogin_Saml2_Settings(settings), saml_response)
    except Exception as exc:  # base64, XML: untrusted input, many ways to be broken
        raise SsoRefused("malformed", "the sign-in answer could not be read", type(exc).__name__) from exc


def finish_login(session: Session, box: SecretBox, request: RequestData, base_url: str) -> SsoLogin:
    """Validate the IdP's POST to the ACS and sign the person in (creating or syncing the
    account); ``SsoRefused`` for anything that is not a fresh, signed answer to our own request."""
    exchange = _auth(session, box, request, base_url)
    config = exchange.config
    saml_response = request.post.get("SAMLResponse")
    if not saml_response:
        raise SsoRefused("malformed", "the sign-in answer is missing")
    response = _read_response(exchange.settings, saml_response)
    # Read before validation only to find the request it claims to answer; the validation then
    # checks the signed InResponseTo against that request.
    request_id = response.document.get("InResponseTo") or ""
    now = utcnow()
    pending = session.get(SamlMessageId, (REQUEST, request_id)) if request_id else None
    if pending is None or pending.expires_at < now:
        raise SsoRefused(
            "unknown_request",
            "the sign-in answer does not match a sign-in started on this site (or it took too long)",
            f"InResponseTo={request_id!r}",
        )
    try:
        response.is_valid(request.as_onelogin(), request_id, raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as exc:
        code, message = _REASONS.get(exc.code, ("invalid", "the sign-in answer is not valid"))
        raise SsoRefused(code, message, str(exc)) from exc
    except Exception as exc:  # xmlsec and lxml errors on hostile XML
        raise SsoRefused(
            "invalid", "the sign-in answer is not valid", f"{type(exc).__name__}: {exc}"
        ) from exc
    assertion_id = response.get_assertion_id() or ""
    if not assertion_id or len(assertion_id) > MAX_MESSAGE_ID:
        raise SsoRefused(
            "malformed", "the sign-in answer could not be read", f"assertion id {assertion_id[:80]!r}"
        )
    not_after = response.get_assertion_not_on_or_after()
    expires = max(
        now + MIN_ASSERTION_TTL,
        datetime.fromtimestamp(not_after, UTC) + timedelta(seconds=config.clock_skew_seconds)
        if not_after
        else now,
    )
    replayed = SsoRefused("replayed", "this sign-in answer was already used", f"assertion {assertion_id}")
    if session.get(SamlMessageId, (ASSERTION, assertion_id)) is not None:
        raise replayed
    claimed = session.execute(
        update(SamlMessageId)
        .where(
            SamlMessageId.kind == REQUEST,
            SamlMessageId.message_id == request_id,
            SamlMessageId.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if rows_matched(claimed) != 1:
        raise replayed
    try:
        with session.begin_nested():
            _remember(session, ASSERTION, assertion_id, expires)
    except IntegrityError:
        raise replayed from None
    name_id = response.get_nameid() or ""
    profile = map_profile(config, response.get_attributes(), name_id, session)
    return SsoLogin(sign_in(session, config, profile), name_id)


def _first(attributes: dict[str, list[str]], name: str) -> str | None:
    if not name:
        return None
    values = attributes.get(name) or []
    return values[0].strip() if values and values[0] is not None else None


def map_profile(
    config: SsoSettings, attributes: dict[str, list[str]], name_id: str, session: Session
) -> Profile:
    """The IdP's attributes through the admin's mapping. Without an e-mail attribute the NameID is
    the e-mail; a user type value that the mapping does not name gives no user type."""
    email = (_first(attributes, config.attr_email) if config.attr_email else name_id) or ""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise SsoRefused(
            "no_email", "your identity provider did not send an e-mail address", f"email attribute={email!r}"
        )
    user_type = None
    if config.attr_user_type:
        mapping = _parse_type_map(config.user_type_map, session)
        for value in attributes.get(config.attr_user_type) or []:
            user_type = mapping.get((value or "").strip().lower())
            if user_type:
                break
    special = None
    if config.attr_special:
        wanted = {v.strip().lower() for v in config.special_values.splitlines() if v.strip()} or {
            "true",
            "1",
            "yes",
        }
        special = any((v or "").strip().lower() in wanted for v in attributes.get(config.attr_special) or [])
    return Profile(
        email=email,
        first_name=_first(attributes, config.attr_first_name),
        last_name=_first(attributes, config.attr_last_name),
        external_id=_first(attributes, config.attr_external_id) or None,
        user_type=user_type,
        special=special,
    )


def _apply(session: Session, user: User, profile: Profile) -> None:
    """Copy what the IdP sent (only what the mapping gives: an unmapped field keeps its value)."""
    if profile.email != user.email:
        taken = session.scalar(
            select(User.id).where(func.lower(User.email) == profile.email, User.id != user.id)
        )
        if taken is not None:
            raise SsoRefused(
                "email_taken",
                "another account already uses the e-mail address your identity provider sent",
                profile.email,
            )
        user.email = profile.email
    if profile.first_name is not None:
        user.first_name = profile.first_name[:80]
    if profile.last_name is not None:
        user.last_name = profile.last_name[:80]
    if profile.external_id is not None:
        user.external_id = profile.external_id[:64]
    if profile.user_type is not None:
        user.user_type = session.scalar(select(UserType).where(UserType.code == profile.user_type))
    if profile.special is not None:
        user.is_special = profile.special


def sign_in(session: Session, config: SsoSettings, profile: Profile) -> UserInfo:
    """The account the IdP vouched for: found by student/employee number, else by e-mail; made
    on first login when just-in-time creation is on; synced on every login when that is on.

    An existing account that keeps a local password (its user type signs in locally, or it has
    no user type, such as an administrator) is never taken over by an SSO login: an IdP must not
    be able to sign in as a local administrator by sending the same e-mail address."""
    user = None
    if profile.external_id:
        user = session.scalar(select(User).where(User.external_id == profile.external_id))
    if user is None:
        user = session.scalar(select(User).where(func.lower(User.email) == profile.email))
        if (
            user is not None
            and profile.external_id
            and user.external_id
            and user.external_id != profile.external_id
        ):
            raise SsoRefused(
                "id_mismatch",
                "the account with your e-mail address belongs to someone with another ID number",
                f"{profile.email}: {user.external_id} != {profile.external_id}",
            )
    if user is None:
        if not config.jit_create:
            raise SsoRefused(
                "no_account", "you have no account on this site yet; ask the parking office", profile.email
            )
        user = User(email=profile.email, auth_source=AuthSource.SAML, role=int(Role.USER), password_hash=None)
        session.add(user)
        _apply(session, user, profile)
        session.flush()
        log.info("SSO created account %s (%s)", user.id, user.email)
    else:
        type_is_sso = user.user_type is not None and user.user_type.login_method == LoginMethod.SSO
        if not (type_is_sso or user.auth_source == AuthSource.SAML):
            raise SsoRefused(
                "local_account", "this account signs in with its password on this site", user.email
            )
        if not user.is_active:
            raise SsoRefused("inactive", "this account is deactivated; ask the parking office", user.email)
        if config.sync_every_login:
            _apply(session, user, profile)
    user.last_login_at = utcnow()
    session.flush()
    return describe(user)


def start_logout(
    session: Session, box: SecretBox, request: RequestData, base_url: str, name_id: str, return_to: str
) -> str | None:
    """The IdP's logout URL (a signed LogoutRequest) for someone who signed in through SSO, or
    None when the IdP has no single logout service."""
    exchange = _auth(session, box, request, base_url)
    if not exchange.config.idp_slo_url:
        return None
    url = exchange.auth.logout(return_to=return_to, name_id=name_id)
    _remember(session, LOGOUT, exchange.auth.get_last_request_id(), utcnow() + REQUEST_TTL)
    return url


def finish_logout(session: Session, box: SecretBox, request: RequestData, base_url: str) -> str | None:
    """Single logout at ``/sso/sls``: the IdP's answer to our LogoutRequest (returns None: the
    local session already ended), or the IdP's own LogoutRequest (returns the URL of our signed
    LogoutResponse; the caller ends the local session). Unsigned messages are refused: anyone
    could otherwise log people out with a link."""
    exchange = _auth(session, box, request, base_url)
    if "SAMLRequest" not in request.get and "SAMLResponse" not in request.get:
        raise SsoRefused("malformed", "the logout message is missing")
    if "Signature" not in request.get:
        raise SsoRefused("unsigned", "the logout message was not signed")
    request_id = None
    if "SAMLResponse" in request.get:
        from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response

        try:
            answer = OneLogin_Saml2_Logout_Response(
                OneLogin_Saml2_Settings(exchange.settings), request.get["SAMLResponse"]
            )
            request_id = answer.document.get("InResponseTo") or ""
        except Exception as exc:  # untrusted input
            raise SsoRefused("malformed", "the logout message could not be read", type(exc).__name__) from exc
        pending = session.get(SamlMessageId, (LOGOUT, request_id))
        if pending is None or pending.used_at is not None or pending.expires_at < utcnow():
            raise SsoRefused(
                "unknown_request", "the logout answer does not match a logout started here", request_id
            )
        pending.used_at = utcnow()
    try:
        url = exchange.auth.process_slo(keep_local_session=True, request_id=request_id)
    except Exception as exc:  # python3-saml raises on a message it cannot parse
        raise SsoRefused("malformed", "the logout message could not be read", str(exc)) from exc
    if exchange.auth.get_errors():
        raise SsoRefused(
            "invalid_logout",
            "the logout message is not valid",
            f"{exchange.auth.get_errors()}: {exchange.auth.get_last_error_reason() or ''}",
        )
    return url
