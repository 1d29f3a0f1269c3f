"""A real SAML identity provider for the tests: pysaml2's ``Server`` signing with Debian's
``xmlsec1`` (RSA-SHA256, SHA-256 digests), answering the AuthnRequests ParkOps really sends.

``TestIdp.answer`` takes the URL ``/sso/login`` redirected to (the signed AuthnRequest, redirect
binding) and returns the form fields of the IdP's POST back to the ACS. Its options make the
answers the SP must refuse: unsigned, signed for another SP (wrong audience), late.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from dashboard.services import sso

XMLSEC = "/usr/bin/xmlsec1"
OTHER_SP = "https://other.example/sso/metadata"
MAIL = "urn:mace:dir:attribute-def:mail"
GIVEN = "urn:mace:dir:attribute-def:givenName"
SURNAME = "urn:mace:dir:attribute-def:sn"
NUMBER = "urn:mace:dir:attribute-def:employeeNumber"
AFFILIATION = "urn:mace:dir:attribute-def:eduPersonAffiliation"
ENTITLEMENT = "urn:mace:dir:attribute-def:eduPersonEntitlement"
SPECIAL = "urn:parkops:special-user"


def write_keypair(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A key and self-signed certificate as files (pysaml2 reads files); also the certificate as
    base64 DER (what the SP is configured with)."""
    key_pem, cert_b64 = sso.generate_sp_keypair(name)
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_text(key_pem)
    cert_file.write_text(f"-----BEGIN CERTIFICATE-----\n{cert_b64}\n-----END CERTIFICATE-----\n")
    return key_file, cert_file, cert_b64


class TestIdp:
    __test__ = False  # not a test class

    def __init__(self, folder: Path, base_url: str, entity_id: str = "https://idp.campus.test/idp") -> None:
        self.folder = folder
        self.entity_id = entity_id
        root = entity_id.rsplit("/", 1)[0]
        self.sso_url = f"{root}/sso"
        self.slo_url = f"{root}/slo"
        self.key_file, self.cert_file, self.cert = write_keypair(folder, "idp")
        self.base_url = base_url
        self.server: Server | None = None

    def config(self, sp_metadata: str) -> IdPConfig:
        # Another SP with the same ACS: its responses carry the wrong audience for ParkOps.
        other = re.sub(r'entityID="[^"]+"', f'entityID="{OTHER_SP}"', sp_metadata, count=1)
        conf = {
            "entityid": self.entity_id,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                        "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
                    },
                    "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}},
                    "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
                }
            },
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "xmlsec_binary": XMLSEC,
            "metadata": {"inline": [sp_metadata, other]} if sp_metadata else {},
        }
        built = IdPConfig()
        built.load(conf)
        return built

    def metadata(self) -> str:
        """The IdP's own metadata XML, as an institution publishes it."""
        return str(entity_descriptor(self.config("")))

    def trust(self, sp_metadata: str) -> None:
        """Load ParkOps' SP metadata (from ``/sso/metadata``) as the IdP's administrator would."""
        self.server = Server(config=self.config(sp_metadata))

    def answer(
        self,
        login_url: str,
        identity: dict[str, list[str]],
        *,
        name_id: str | None = None,
        signed: bool = True,
        audience: str | None = None,
        sha1: bool = False,
    ) -> dict[str, str]:
        """The IdP's POST to the ACS for the AuthnRequest in ``login_url``."""
        assert self.server is not None, "call trust() first"
        query = parse_qs(urlsplit(login_url).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
        subject = name_id or identity.get(MAIL, ["someone@campus.test"])[0]
        response = self.server.create_authn_response(
            identity,
            in_response_to=request.id,
            destination=request.assertion_consumer_service_url,
            sp_entity_id=audience or request.issuer.text,
            name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=subject),
            userid=subject,
            authn={"class_ref": PASSWORDPROTECTEDTRANSPORT},
            sign_response=signed,
            sign_assertion=signed,
            sign_alg=SIG_RSA_SHA1 if sha1 else SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA1 if sha1 else DIGEST_SHA256,
        )
        return {
            "SAMLResponse": base64.b64encode(str(response).encode()).decode(),
            "RelayState": query.get("RelayState", [""])[0],
        }

    def logout_request(self, sp_sls_url: str, name_id: str, *, signed: bool = True) -> str:
        """The URL an IdP-initiated single logout sends the browser to (redirect binding)."""
        assert self.server is not None
        _id, request = self.server.create_logout_request(
            sp_sls_url, self.entity_id, name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=name_id)
        )
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT, str(request), sp_sls_url, "", sign=signed, sigalg=SIG_RSA_SHA256
        )
        return dict(info["headers"])["Location"]

    def logout_answer(self, logout_url: str) -> str:
        """The IdP's signed LogoutResponse (the URL back to the SP) to ParkOps' LogoutRequest."""
        assert self.server is not None
        query = parse_qs(urlsplit(logout_url).query)
        request = self.server.parse_logout_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
        response = self.server.create_logout_response(request, [BINDING_HTTP_REDIRECT])
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(response),
            f"{self.base_url}/sso/sls",
            query.get("RelayState", [""])[0],
            response=True,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        return dict(info["headers"])["Location"]

    def post_form(self, fields: dict[str, str], acs_url: str) -> str:
        """The auto-submitting HTML form an IdP answers the browser with (pysaml2's POST binding)."""
        assert self.server is not None
        info: Any = self.server.apply_binding(
            BINDING_HTTP_POST,
            base64.b64decode(fields["SAMLResponse"]).decode(),
            destination=acs_url,
            relay_state=fields["RelayState"],
            response=True,
        )
        return info["data"]


def tamper(fields: dict[str, str], old: str, new: str) -> dict[str, str]:
    """The same response with a value changed after signing (what an attacker in the middle does)."""
    xml = base64.b64decode(fields["SAMLResponse"]).decode()
    assert old in xml
    return {**fields, "SAMLResponse": base64.b64encode(xml.replace(old, new).encode()).decode()}


def configure(core: Any, idp: TestIdp, **overrides: object) -> None:
    """ParkOps set up for ``idp`` as an admin would on /admin/sso (an SP key pair generated once)."""
    values = {
        "enabled": True,
        "institution_name": "Campus",
        "idp_entity_id": idp.entity_id,
        "idp_sso_url": idp.sso_url,
        "idp_slo_url": idp.slo_url,
        "idp_cert": idp.cert,
        "attr_email": MAIL,
        "attr_first_name": GIVEN,
        "attr_last_name": SURNAME,
        "attr_external_id": NUMBER,
        "attr_user_type": AFFILIATION,
        "user_type_map": "student = student\nstaff = staff\nfaculty = staff",
        "attr_special": ENTITLEMENT,
        "special_values": SPECIAL,
        "jit_create": True,
        "sync_every_login": True,
    }
    values.update(overrides)
    with core.db.session() as session:
        sso.save(session, core.secrets, values, None, generate_key=not sso.has_private_key(session))
