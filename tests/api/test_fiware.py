"""The FIWARE feed, validated offline against the official Smart Data Models schemas.

The schemas are a verbatim copy of the official ones (``tests/api/standards/fiware-parking/``, with
their SOURCE and licences), kept in the repository so that ``make test`` works on any clone. Their
``$ref``s name ``https://smart-data-models.github.io/...``
URLs; a ``referencing`` registry maps every ``$id`` to the local copy, and any other URL fails
instead of reaching the network.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from sqlalchemy import select

from dashboard.core import Core
from dashboard.services import demo, occupancy
from dashboard.services.occupancy import LiveStore
from models import LotGroup, OccupancySource

STANDARDS = Path(__file__).resolve().parent / "standards" / "fiware-parking"
TYPES = ("OffStreetParking", "ParkingGroup")


def _standards() -> Path:
    if not (STANDARDS / "common-schema.json").is_file():
        pytest.fail(f"FIWARE schemas not found at {STANDARDS}: they are part of the repository")
    return STANDARDS


def _offline(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    folder = _standards()
    documents = [json.loads(path.read_text()) for path in sorted(folder.rglob("*.json"))]
    schemas = [doc for doc in documents if "$id" in doc]
    registry = Registry(retrieve=_offline).with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in schemas
    )
    return {
        name: Draft202012Validator(
            json.loads((folder / name / "schema.json").read_text()),
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for name in TYPES
    }


def _errors(validator: Draft202012Validator, entity: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(entity)]


@pytest.mark.parametrize("name", TYPES)
def test_the_official_examples_pass(validators: dict[str, Draft202012Validator], name: str) -> None:
    example = json.loads((_standards() / name / "example.json").read_text())
    assert _errors(validators[name], example) == []


def test_the_validators_check_the_shared_definitions(validators: dict[str, Draft202012Validator]) -> None:
    """A wrong location only fails through common-schema.json's Location-Commons: proof that the
    $ref resolved to the local file; a bad date-time proves formats are checked."""
    entity = {"id": "x", "type": "OffStreetParking", "location": {"type": "Point", "coordinates": "here"}}
    assert _errors(validators["OffStreetParking"], entity)
    entity = {"id": "x", "type": "OffStreetParking", "location": {"type": "Point", "coordinates": [1.0, 2.0]}}
    assert _errors(validators["OffStreetParking"], entity) == []
    assert _errors(validators["OffStreetParking"], {**entity, "observationDateTime": "yesterday"})


@pytest.fixture
def campus(core: Core, tmp_path: Path) -> dict[str, int]:
    """The demo campus with a figure from every source and every status: full, almost full,
    stale, closed, and permit-only groups."""
    now = datetime.now(UTC)
    with core.db.session() as session:
        demo.seed_demo(session, core.secrets, tmp_path)
        ids = {group.name: group.id for group in session.scalars(select(LotGroup))}
        session.scalars(select(LotGroup).where(LotGroup.name == "West Campus Surface")).one().is_closed = True
    figures = [
        ("North Campus Garage", OccupancySource.PARKING_LOGIX, 590, 590, now),
        ("Ring Road East", OccupancySource.MISTALL, 470, 505, now - timedelta(minutes=5)),
        ("Columbia Street Lots", OccupancySource.DEVICES, 300, 900, now - timedelta(hours=2)),
        ("Health Sciences Deck", OccupancySource.DEVICES, 1000, 400, now),  # a drifted counter
        ("Central Services Yard", OccupancySource.DEVICES, 10, 40, now),
    ]
    with core.db.session() as session:
        store = LiveStore(core.redis)
        policy = occupancy.load_policy(session, core.secrets)
        for name, source, occupied, capacity, ts in figures:
            # flagged as the tasks and the ingester flag a count far above capacity
            flag = occupancy.capacity_flag(occupied, capacity, policy)
            occupancy.apply_figure(
                session, store, ids[name], source, occupied, capacity, ts, step_percent=5, flag=flag
            )
    return ids


def _feed(client: FlaskClient, name: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/fiware/{name}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=1" and response.headers["ETag"]
    return response.get_json()


@pytest.mark.parametrize("name", TYPES)
def test_every_demo_entity_is_valid(
    client: FlaskClient, validators: dict[str, Draft202012Validator], campus: dict[str, int], name: str
) -> None:
    entities = _feed(client, name)

    assert entities and {e["type"] for e in entities} == {name}
    invalid = {e["id"]: errors for e in entities if (errors := _errors(validators[name], e))}
    assert invalid == {}


def test_the_feed_reflects_the_campus(client: FlaskClient, campus: dict[str, int]) -> None:
    sites = {e["name"]: e for e in _feed(client, "OffStreetParking")}
    lots = _feed(client, "ParkingGroup")

    assert "Central Services Yard" not in sites and len(sites) == 7
    assert sites["North Campus Garage"]["status"] == ["full"]
    assert (
        sites["North Campus Garage"]["id"]
        == f"urn:ngsi-ld:OffStreetParking:parkops-{campus['North Campus Garage']}"
    )
    assert (
        sites["Ring Road East"]["status"] == ["almostFull"]
        and sites["Ring Road East"]["availableSpotNumber"] == 35
    )
    assert "status" not in sites["Columbia Street Lots"]  # stale
    assert sites["West Campus Surface"]["status"] == ["closed"]
    assert sites["Health Sciences Deck"]["occupancy"] == 1.0
    # The drifted counter's flag reaches the feed beside its status (validated above).
    assert sites["Health Sciences Deck"]["status"] == ["full"]
    assert sites["Health Sciences Deck"]["statusFlags"] == ["overCapacity"]
    assert [name for name, site in sites.items() if "statusFlags" in site] == ["Health Sciences Deck"]
    assert sites["Village Residence Lots"]["occupancyDetectionType"] == ["modelBased"]  # permits only
    assert {lot["refParkingSite"] for lot in lots} == {site["id"] for site in sites.values()}


def test_status_itself_cannot_carry_a_flag(validators: dict[str, Draft202012Validator]) -> None:
    """Why flags go in ``statusFlags``: the schema's ``status`` is a closed DATEX II enum, so a
    flag written there would make the entity invalid."""
    entity = {"id": "x", "type": "OffStreetParking", "location": {"type": "Point", "coordinates": [1.0, 2.0]}}
    assert _errors(validators["OffStreetParking"], {**entity, "status": ["full", "overCapacity"]})
    assert (
        _errors(
            validators["OffStreetParking"], {**entity, "status": ["full"], "statusFlags": ["overCapacity"]}
        )
        == []
    )
