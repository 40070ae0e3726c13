"""What ``disclose`` returns for concrete records, field by field, with its reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policies import Mode, PolicyEngine, coarse_point, disclose, quantity_band
from schema.enums import (
    IncidentCategory,
    ResourceStatus,
    ShelterStatus,
    VolunteerAvailability,
)
from schema.geo import GeoPoint
from schema.records import ResourcePublic, ShelterPublic, VolunteerPublic
from tests.policies.world import DEPARTMENT, NEIGHBOUR, OWNER, PUBLIC, SELF

NOW = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
HOME = GeoPoint.at(116.39751, 39.90871)
ENVELOPE = {"version": 3, "created_at": NOW, "updated_at": NOW}


def _resource(**changes: Any) -> dict[str, Any]:
    record = {
        "id": f"Resource:{OWNER.org}:gen1",
        "owner": OWNER.org,
        **ENVELOPE,
        "kind": "portable_generator",
        "name": "Diesel generator",
        "quantity": 40,
        "available": 12,
        "unit": "pcs",
        "status": ResourceStatus.AVAILABLE,
        "location": HOME,
        "address": "1 Chang'an Avenue",
        "shareable": True,
        "description": "10 kW, needs 2 people to move",
        "available_band": None,
    }
    return record | changes


NEIGHBOUR_QUANTITY = "approximated by policy neighbour.shareable-resources.approximate"


def test_a_neighbour_sees_bands_and_a_coarse_location(engine: PolicyEngine) -> None:
    shown, reasons = disclose(
        _resource(), "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL
    )
    assert shown == _resource(
        quantity=None,
        available=None,
        available_band=quantity_band(12),
        location=coarse_point(HOME),
        address=None,
    )
    assert shown["available_band"].label == "10-49"
    assert shown["location"] != HOME
    assert reasons == {
        "quantity": NEIGHBOUR_QUANTITY,
        "available": NEIGHBOUR_QUANTITY,
        "location": NEIGHBOUR_QUANTITY,
        "address": (
            "hidden: policy neighbour.shareable-resources.approximate allows only an"
            " approximation, which this field does not have"
        ),
    }
    validated = ResourcePublic.model_validate(shown).model_dump()
    assert validated["available_band"] == {"low": 10, "high": 49, "label": "10-49"}


def test_in_an_emergency_a_neighbour_sees_exact_stock(engine: PolicyEngine) -> None:
    shown, reasons = disclose(
        _resource(), "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.EMERGENCY
    )
    assert shown is not None
    assert (shown["quantity"], shown["available"]) == (40, 12)
    assert shown["available_band"] == quantity_band(12)
    assert shown["location"] == coarse_point(HOME)
    assert set(reasons) == {"location", "address"}


def test_a_resource_that_is_not_shareable_is_invisible_to_neighbours(
    engine: PolicyEngine,
) -> None:
    record = _resource(shareable=False)
    assert disclose(
        record, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.EMERGENCY
    ) == (None, {})
    shown, reasons = disclose(
        record, "Resource", SELF, owner=OWNER, engine=engine, mode=Mode.NORMAL
    )
    assert shown == record | {"available_band": quantity_band(12)}
    assert reasons == {}


def test_a_location_given_as_geojson_comes_back_as_geojson(engine: PolicyEngine) -> None:
    record = _resource(location={"type": "Point", "coordinates": [HOME.lon, HOME.lat]})
    shown, _ = disclose(record, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert shown is not None
    assert shown["location"] == coarse_point(HOME).model_dump()


def test_fields_the_public_model_does_not_have_are_dropped(engine: PolicyEngine) -> None:
    shown, _ = disclose(
        _resource(internal_note="keys under the mat"),
        "Resource",
        SELF,
        owner=OWNER,
        engine=engine,
        mode=Mode.NORMAL,
    )
    assert shown is not None
    assert "internal_note" not in shown
    assert list(shown) == list(ResourcePublic.model_fields)


def test_the_public_sees_an_open_shelter_coarsely(engine: PolicyEngine) -> None:
    shelter = {
        "id": f"Shelter:{OWNER.org}:school",
        "owner": OWNER.org,
        **ENVELOPE,
        "name": "No. 2 Middle School gym",
        "capacity": 300,
        "occupancy": 120,
        "accessible": True,
        "status": ShelterStatus.OPEN,
        "location": HOME,
        "address": "2 School Lane",
        "description": "Enter by the north gate",
        "free_beds_band": None,
    }
    shown, reasons = disclose(
        shelter, "Shelter", PUBLIC, owner=OWNER, engine=engine, mode=Mode.EMERGENCY
    )
    assert shown == shelter | {
        "capacity": None,
        "occupancy": None,
        "location": coarse_point(HOME),
        "address": None,
        "description": None,
    }
    hidden = "hidden: no policy shares it"
    assert reasons == {
        "capacity": hidden,
        "occupancy": hidden,
        "free_beds_band": hidden,
        "location": "approximated by policy public.open-shelters.location",
        "address": (
            "hidden: policy public.open-shelters.location allows only an approximation,"
            " which this field does not have"
        ),
        "description": hidden,
    }
    neighbour, _ = disclose(
        shelter, "Shelter", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL
    )
    assert neighbour is not None
    assert neighbour["free_beds_band"] == quantity_band(180)
    assert neighbour["description"] == "Enter by the north gate"
    validated = ShelterPublic.model_validate(neighbour).model_dump()
    assert validated["free_beds_band"] == {"low": 50, "high": 199, "label": "50-199"}
    closed = shelter | {"status": ShelterStatus.CLOSED}
    assert disclose(closed, "Shelter", PUBLIC, owner=OWNER, engine=engine, mode=Mode.NORMAL) == (
        None,
        {},
    )


def test_volunteers_personal_data_needs_an_emergency_and_a_purpose(engine: PolicyEngine) -> None:
    volunteer = {
        "id": f"Volunteer:{OWNER.org}:v1",
        "owner": OWNER.org,
        **ENVELOPE,
        "name": "Wang Fang",
        "phone": "+86 138 0000 0000",
        "skills": ["first aid", "driving"],
        "availability": VolunteerAvailability.AVAILABLE,
        "team": "North block",
    }
    shown, reasons = disclose(
        volunteer,
        "Volunteer",
        DEPARTMENT,
        owner=OWNER,
        engine=engine,
        mode=Mode.NORMAL,
        purpose="evacuation of North block",
    )
    assert shown == volunteer | {"name": None, "phone": None}
    assert reasons == {
        "name": "hidden by policy guard.personal-data",
        "phone": "hidden by policy guard.personal-data",
    }
    shown, reasons = disclose(
        volunteer,
        "Volunteer",
        DEPARTMENT,
        owner=OWNER,
        engine=engine,
        mode=Mode.EMERGENCY,
        purpose="evacuation of North block",
    )
    assert shown == volunteer
    assert reasons == {}
    assert VolunteerPublic.model_validate(shown).model_dump()["name"] == "Wang Fang"
    shown, _ = disclose(
        volunteer, "Volunteer", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.EMERGENCY
    )
    assert shown == volunteer | {"name": None, "phone": None}


def test_the_envelope_stays_when_the_status_group_is_hidden(tmp_path: Path) -> None:
    path = tmp_path / "owner.cedar"
    path.write_text(
        '@id("owner.no-status")\n'
        'forbid (principal, action in Linli::Action::"read", resource is Linli::Resource)\n'
        'when { context.relation == "neighbour" && resource.group == "status" };\n',
        encoding="utf-8",
    )
    shown, reasons = disclose(
        _resource(),
        "Resource",
        NEIGHBOUR,
        owner=OWNER,
        engine=PolicyEngine(path),
        mode=Mode.NORMAL,
    )
    assert shown is not None
    assert shown["status"] is None
    assert reasons["status"] == "hidden by policy owner.no-status"
    assert {k: shown[k] for k in ("id", "owner", "version", "created_at", "updated_at")} == {
        "id": f"Resource:{OWNER.org}:gen1",
        "owner": OWNER.org,
        **ENVELOPE,
    }


def test_a_quantity_without_a_band_is_hidden_when_only_approximate(tmp_path: Path) -> None:
    path = tmp_path / "owner.cedar"
    path.write_text(
        '@id("owner.incidents-to-neighbours")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource is Linli::Incident)\n'
        'when { context.relation == "neighbour" && resource.group == "identity" };\n'
        '@id("owner.incident-sizes-to-neighbours")\n'
        'permit (principal, action == Linli::Action::"read_approx", resource is Linli::Incident)\n'
        'when { context.relation == "neighbour" && resource.group == "quantity.exact" };\n',
        encoding="utf-8",
    )
    incident = {
        "id": f"Incident:{OWNER.org}:i1",
        "owner": OWNER.org,
        **ENVELOPE,
        "title": "Flooded underpass",
        "category": IncidentCategory.NATURAL_DISASTER,
        "affected_people": 35,
    }
    shown, reasons = disclose(
        incident,
        "Incident",
        NEIGHBOUR,
        owner=OWNER,
        engine=PolicyEngine(path),
        mode=Mode.NORMAL,
    )
    assert shown is not None
    assert shown["title"] == "Flooded underpass"
    assert shown["affected_people"] is None
    assert reasons["affected_people"] == (
        "hidden: policy owner.incident-sizes-to-neighbours allows only an approximation,"
        " which this field does not have"
    )
