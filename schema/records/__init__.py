"""Every record type of the common schema: a family of models (``_family``) and its declaration.

``REGISTRY`` holds each type's ``RecordType`` (``_registry``), in the order of
``_DECLARED`` and then those other packages add through the ``linli.records``
entry-point group. Everything else about a record type is derived from it.
"""

from importlib.metadata import entry_points

from schema.records import (
    aid_request,
    alert,
    incident,
    resource,
    risk_flag,
    sensor,
    shelter,
    volunteer,
)
from schema.records._family import QuantityBand, RecordEnvelope, public_model, update_model
from schema.records._registry import (
    Actor,
    Band,
    Fact,
    FactValue,
    Filter,
    RecordType,
    Registry,
    code,
)
from schema.records.aid_request import (
    AidRequestBase,
    AidRequestCreate,
    AidRequestPublic,
    AidRequestState,
    AidRequestUpdate,
)
from schema.records.alert import (
    AlertArea,
    AlertBase,
    AlertCreate,
    AlertInfo,
    AlertPublic,
    AlertResource,
    AlertUpdate,
    NameValue,
    alert_active,
    shifted,
)
from schema.records.incident import IncidentBase, IncidentCreate, IncidentPublic, IncidentUpdate
from schema.records.organisation import OrganisationBase, OrganisationPublic
from schema.records.resource import ResourceBase, ResourceCreate, ResourcePublic, ResourceUpdate
from schema.records.risk_flag import (
    FlagSource,
    FlagTransition,
    RiskFlagBase,
    RiskFlagCreate,
    RiskFlagHop,
    RiskFlagPublic,
    RiskFlagState,
    RiskFlagUpdate,
)
from schema.records.sensor import (
    SensorCreate,
    SensorPublic,
    SensorReading,
    SensorRule,
    SensorState,
    SensorUpdate,
    SeriesPoint,
)
from schema.records.shelter import ShelterBase, ShelterCreate, ShelterPublic, ShelterUpdate
from schema.records.volunteer import (
    VolunteerBase,
    VolunteerCreate,
    VolunteerPublic,
    VolunteerUpdate,
)

__all__ = [
    "REGISTRY",
    "Actor",
    "AidRequestBase",
    "AidRequestCreate",
    "AidRequestPublic",
    "AidRequestState",
    "AidRequestUpdate",
    "AlertArea",
    "AlertBase",
    "AlertCreate",
    "AlertInfo",
    "AlertPublic",
    "AlertResource",
    "AlertUpdate",
    "Band",
    "Fact",
    "FactValue",
    "Filter",
    "FlagSource",
    "FlagTransition",
    "IncidentBase",
    "IncidentCreate",
    "IncidentPublic",
    "IncidentUpdate",
    "NameValue",
    "OrganisationBase",
    "OrganisationPublic",
    "QuantityBand",
    "RecordEnvelope",
    "RecordType",
    "Registry",
    "ResourceBase",
    "ResourceCreate",
    "ResourcePublic",
    "ResourceUpdate",
    "RiskFlagBase",
    "RiskFlagCreate",
    "RiskFlagHop",
    "RiskFlagPublic",
    "RiskFlagState",
    "RiskFlagUpdate",
    "SensorCreate",
    "SensorPublic",
    "SensorReading",
    "SensorRule",
    "SensorState",
    "SensorUpdate",
    "SeriesPoint",
    "ShelterBase",
    "ShelterCreate",
    "ShelterPublic",
    "ShelterUpdate",
    "VolunteerBase",
    "VolunteerCreate",
    "VolunteerPublic",
    "VolunteerUpdate",
    "alert_active",
    "code",
    "public_model",
    "shifted",
    "update_model",
]

_DECLARED = (incident, resource, shelter, volunteer, risk_flag, aid_request, alert, sensor)

REGISTRY = Registry(
    [module.RECORD for module in _DECLARED]
    + [point.load() for point in entry_points(group="linli.records")]
)
"""Every record type, by name."""
