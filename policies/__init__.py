"""The sharing-policy engine: Cedar policies, field masks, approximation and emergency mode."""

from policies.approximate import GRID_METRES, QUANTITY_BANDS, coarse_point, quantity_band
from policies.caller import Authenticator, Caller, Relation, relation_of
from policies.engine import (
    BASELINE_PATH,
    SCHEMA_PATH,
    Decision,
    Disclosure,
    FieldDecisions,
    Mode,
    Owner,
    PolicyEngine,
)
from policies.errors import PolicyError, PolicyEvaluationError
from policies.mask import ENVELOPE_FIELDS, Explanation, disclose, disclose_page, explain
from policies.records import PUBLIC_MODELS, RECORD_FACTS, RECORD_TYPES, FactValue, facts_of
from policies.tokens import (
    ACCESS_TOKEN_TYPES,
    REQUIRED_CLAIMS,
    BearerAuthenticator,
    JwksCache,
    TokenError,
    TokenVerifier,
)

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "BASELINE_PATH",
    "ENVELOPE_FIELDS",
    "GRID_METRES",
    "PUBLIC_MODELS",
    "QUANTITY_BANDS",
    "RECORD_FACTS",
    "RECORD_TYPES",
    "REQUIRED_CLAIMS",
    "SCHEMA_PATH",
    "Authenticator",
    "BearerAuthenticator",
    "Caller",
    "Decision",
    "Disclosure",
    "Explanation",
    "FactValue",
    "FieldDecisions",
    "JwksCache",
    "Mode",
    "Owner",
    "PolicyEngine",
    "PolicyError",
    "PolicyEvaluationError",
    "Relation",
    "TokenError",
    "TokenVerifier",
    "coarse_point",
    "disclose",
    "disclose_page",
    "explain",
    "facts_of",
    "quantity_band",
    "relation_of",
]
