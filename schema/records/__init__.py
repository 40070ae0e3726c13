"""Every record type of the common schema, each a family of models (see ``_family``)."""

from schema.records._family import QuantityBand, RecordEnvelope
from schema.records.aid_request import (
    AidRequestBase,
    AidRequestCreate,
    AidRequestPublic,
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
)
from schema.records.incident import IncidentBase, IncidentCreate, IncidentPublic, IncidentUpdate
from schema.records.organisation import OrganisationBase, OrganisationPublic
from schema.records.resource import ResourceBase, ResourceCreate, ResourcePublic, ResourceUpdate
from schema.records.risk_flag import (
    FlagTransition,
    RiskFlagBase,
    RiskFlagCreate,
    RiskFlagHop,
    RiskFlagPublic,
    RiskFlagUpdate,
)
from schema.records.shelter import ShelterBase, ShelterCreate, ShelterPublic, ShelterUpdate
from schema.records.volunteer import (
    VolunteerBase,
    VolunteerCreate,
    VolunteerPublic,
    VolunteerUpdate,
)

__all__ = [
    "AidRequestBase",
    "AidRequestCreate",
    "AidRequestPublic",
    "AidRequestUpdate",
    "AlertArea",
    "AlertBase",
    "AlertCreate",
    "AlertInfo",
    "AlertPublic",
    "AlertResource",
    "AlertUpdate",
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
    "ResourceBase",
    "ResourceCreate",
    "ResourcePublic",
    "ResourceUpdate",
    "RiskFlagBase",
    "RiskFlagCreate",
    "RiskFlagHop",
    "RiskFlagPublic",
    "RiskFlagUpdate",
    "ShelterBase",
    "ShelterCreate",
    "ShelterPublic",
    "ShelterUpdate",
    "VolunteerBase",
    "VolunteerCreate",
    "VolunteerPublic",
    "VolunteerUpdate",
]
