"""Settings of the district hub (env ``LINLI_*`` or a TOML file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from hub.sealed import NEW_KEY_COMMAND, SECRETS_KEY_VARIABLE, Sealer, parse_keys
from schema.runtime.outbound import OutboundPolicy
from schema.runtime.settings import Environment, ServiceSettings

__all__ = ["HubSettings", "TrustedIssuer"]


class TrustedIssuer(BaseModel):
    """The authorization server of a higher hub whose tokens this hub accepts for itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1, description="The `iss` of its tokens")
    jwks_url: str | None = Field(None, description="Where its signing keys are published")
    jwks_file: Path | None = Field(None, description="Its signing keys as a JWKS file instead")
    revocations_url: str | None = Field(
        None,
        description="Where it publishes revoked tokens and disabled clients;"
        " none: <issuer>/oauth/revocations",
    )

    def model_post_init(self, _: object) -> None:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError(f"trusted issuer {self.issuer}: give one of jwks_url or jwks_file")


class HubSettings(ServiceSettings):
    """Who the hub is, how it issues tokens and how it calls its sources."""

    port: int = Field(8000, ge=1, le=65535, description="Port to listen on")
    database_url: str = Field(
        "sqlite+aiosqlite:///./linli-hub.db", description="SQLAlchemy async URL of the hub database"
    )
    hub_id: str = Field("hub-110105", description="Source id of this hub")
    hub_name: str = Field("朝阳区应急数据枢纽 Chaoyang district hub", description="Display name")
    district: str = Field("110105", description="County-level GB/T 2260 code of the district")
    issuer: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of the hub; the `iss` of every token it signs",
    )
    access_token_ttl_s: int = Field(300, ge=30, le=3600, description="Lifetime of access tokens")
    secrets_key: SecretStr | None = Field(
        None,
        validate_default=True,
        description="Fernet key(s) that encrypt the hub's signing keys and webhook secrets at"
        " rest, comma-separated, newest first (older ones only decrypt, while rotating);"
        f" required in production. Make one with `{NEW_KEY_COMMAND}`",
    )
    key_refresh_s: float = Field(
        30.0, gt=0, le=600, description="How often each hub replica reloads its signing keys"
    )
    revocation_refresh_s: float = Field(
        1.0,
        gt=0,
        le=2.0,
        description="How often each hub replica reloads revoked tokens and disabled clients"
        " (its own token check and /oauth/revocations serve them from memory)",
    )
    source_timeout_s: float = Field(2.0, gt=0, description="Timeout of one call to one source")
    deadline_s: float = Field(5.0, gt=0, description="Overall deadline of one federated query")
    sources_file: Path | None = Field(
        None, description="TOML file of sources: [[sources]] id = ..., url = ..."
    )
    allowed_outbound_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts sources and webhooks may be at (names, *.suffix, CIDR; JSON list);"
        " empty: any public host. Production refuses loopback, link-local and private"
        " addresses unless listed",
    )
    breaker_threshold: int = Field(3, ge=1, description="Failures in a row that open a circuit")
    breaker_cooldown_s: float = Field(10.0, gt=0, description="Seconds an open circuit waits")
    health_interval_s: float = Field(10.0, gt=0, description="Seconds between source health checks")
    max_query_cost: int = Field(
        20_000,
        ge=1,
        description="Largest cost of one request: over its federated list fields (aliases and"
        " fragments included), planned sources times page size; a costlier one is refused",
    )
    max_inflight_per_source: int = Field(
        8,
        ge=1,
        description="Calls in flight to one source at once; the others wait, up to their deadline",
    )
    graphql_rate_per_client: int = Field(
        100, ge=1, description="GraphQL requests per second one client (or address) may make"
    )
    token_failures_per_client: int = Field(
        30, ge=1, description="Failed /oauth/token attempts per minute for one client id"
    )
    token_failures_per_address: int = Field(
        10, ge=1, description="Failed /oauth/token attempts per minute from one remote address"
    )
    # Risk flags (hub/flags)
    routing_file: Path | None = Field(
        None,
        description="TOML routing rules of risk flags ([[routes]], [defaults]); none: duty_desk",
    )
    duty_desk: str = Field(
        "110105400000",
        pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$",
        description="Department code of the district duty desk: default route and last escalation",
    )
    ack_deadline_s: int = Field(
        1800, gt=0, description="Seconds to acknowledge a flag when no routing rule says"
    )
    escalation_interval_s: float = Field(
        1.0, gt=0, description="Seconds between checks for flags past their deadline"
    )
    event_poll_s: float = Field(
        1.0,
        gt=0,
        description="While the PostgreSQL event listener reconnects, subscribers re-read the "
        "event log this often (catch-up); a listening replica waits for notifications",
    )
    event_retention_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="Flag events older than this are pruned"
    )
    delivery_poll_s: float = Field(
        0.5,
        gt=0,
        description="Seconds between rounds of the outbox and webhook workers, and of a city"
        " hub copying its departments' flag events from the hubs below",
    )
    delivery_retry_base_s: float = Field(
        1.0, gt=0, description="First retry delay of node and webhook deliveries (doubles)"
    )
    delivery_retry_max_s: float = Field(
        300.0, gt=0, description="Longest retry delay of node and webhook deliveries"
    )
    node_timeout_s: float = Field(5.0, gt=0, description="Timeout of one update sent to a node")
    webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one webhook attempt")
    webhook_max_attempts: int = Field(
        10, ge=1, description="Webhook attempts before a delivery is marked failed"
    )
    external_max_attempts: int = Field(
        20, ge=1, description="Attempts to file a confirmed flag with Open311 before giving up"
    )
    external_poll_s: float = Field(
        60.0, gt=0, description="Seconds between reads of a filed flag's Open311 status"
    )
    # Mutual aid (hub/aid)
    aid_rematch_s: float = Field(
        60.0,
        gt=0,
        description="Seconds between passes that match again the aid requests still open to"
        " the district (no provider yet, not cancelled, not past their needed-by time) and"
        " notify owners not asked before; a decline makes that request's pass due at once",
    )
    aid_rematch_requests: int = Field(
        50, ge=1, description="Open aid requests matched again in one pass, longest waiting first"
    )
    aid_match_owners: int = Field(
        20,
        ge=1,
        description="Owners an open aid request is passed on to when raised, and at most this"
        " many more in each later pass, best match first",
    )
    # Situation reports (hub/sitreps)
    sitrep_deadlines_s: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            "initial": {"I": 3600, "II": 3600, "III": 7200, "IV": 14400},
            "follow_up": {"I": 7200, "II": 14400, "III": 43200, "IV": 86400},
            "final": {"I": 604800, "II": 604800, "III": 1209600, "IV": 1209600},
        },
        description="Seconds a report may take, by kind (initial, follow_up, final) and the"
        " incident's GB/T 35561 level (I-IV), JSON: initial and final from the incident's start,"
        " follow_up from the previous version submitted. Default: initial I and II 1 h, III 2 h,"
        " IV 4 h; follow_up I 2 h, II 4 h, III 12 h, IV 24 h; final I and II 7 d, III and IV 14 d",
    )
    sitrep_escalate_to: str | None = Field(
        None,
        pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$",
        description="Department told (event and webhooks) when a report is overdue;"
        " none: duty_desk",
    )
    sitrep_relay_from: str = Field(
        "II",
        pattern=r"^(I|II|III|IV|off)$",
        description="Reports received from hubs below on incidents of this GB/T 35561 level"
        " or more severe are sent on, unchanged, to this hub's superior (越级上报); off: none",
    )
    sitrep_check_interval_s: float = Field(
        5.0, gt=0, description="Seconds between checks for overdue situation reports"
    )
    sitrep_watch_interval_s: float = Field(
        60.0,
        gt=0,
        description="Seconds between reads of the open incidents (through the federation, as"
        " the hub) for initial reports never started by their deadline",
    )
    # Hierarchical federation (a city or province hub above this one)
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="Authorization servers of higher hubs whose tokens this hub accepts, only"
        " for its own audience (`hub_id`): JSON list of {issuer, jwks_url} or"
        " {issuer, jwks_file}, each with an optional revocations_url",
    )
    trusted_revocation_poll_s: float = Field(
        2.0,
        gt=0,
        le=3.0,
        description="Seconds between polls of each trusted issuer's revocation list (with its"
        " refresh, a token it revokes is refused here within 5 s, as at nodes)",
    )
    max_actor_chain: int = Field(
        3,
        ge=1,
        le=8,
        description="Most actors (nested RFC 8693 `act`) a token this hub accepts or mints may"
        " name; this hub adds itself when it calls its sources for a caller",
    )
    superior_url: str | None = Field(
        None,
        description="Base URL of the hub of the level above (city or province), which this hub"
        " calls as itself, e.g. to submit reports (hub/federation/superior.py); none: the top",
    )
    superior_client_id: str | None = Field(
        None, description="This hub's OAuth client id at the superior hub (client credentials)"
    )
    superior_client_secret: SecretStr | None = Field(
        None, description="This hub's OAuth client secret at the superior hub"
    )
    superior_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of one call to the superior hub (token or GraphQL)"
    )
    # People signing in (hub/auth: roles, people, the sign-in page)
    web_client_id: str = Field(
        "linli-web",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._~-]{2,63}$",
        description="Client id of the web app: a public client (authorization code with PKCE)",
    )
    web_redirect_uris: list[str] = Field(
        default_factory=list,
        description="Redirect URIs of the web app, matched exactly (JSON list); empty:"
        " <issuer>/app/callback",
    )
    authorization_code_ttl_s: int = Field(
        60, ge=5, le=600, description="Lifetime of an authorization code (used once)"
    )
    refresh_token_ttl_s: int = Field(
        12 * 3600,
        ge=60,
        description="Lifetime of a refresh token; each refresh rotates it and starts a new one",
    )
    signin_failures_per_person: int = Field(
        5, ge=1, description="Failed sign-ins per minute for one username before it is throttled"
    )
    signin_failures_per_address: int = Field(
        20, ge=1, description="Failed sign-ins per minute from one remote address"
    )
    # The web application's map (hub/web)
    map_tile_url: str | None = Field(
        None,
        description="Base map tiles of the web application at /app/ (an http(s) XYZ template"
        " with {z}, {x} and {y}, Web Mercator, e.g. a national tile service); none: the map"
        " draws community areas and features on a plain background",
    )
    map_tile_attribution: str = Field(
        "", description="Credit line the map shows under the base map tiles"
    )

    @field_validator("map_tile_url")
    @classmethod
    def _map_tile_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        if not url.startswith(("https://", "http://")) or not all(
            part in url for part in ("{z}", "{x}", "{y}")
        ):
            raise ValueError("an http(s) URL template with {z}, {x} and {y}")
        return url

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if key is not None:
            parse_keys(key.get_secret_value())
        elif info.data.get("environment") is Environment.PRODUCTION:
            raise ValueError(
                f"production keeps secrets encrypted: set {SECRETS_KEY_VARIABLE}"
                f" (make a key with `{NEW_KEY_COMMAND}`)"
            )
        return key

    def sealer(self) -> Sealer:
        """Seals and opens the secrets the hub keeps at rest (plain text without a key)."""
        key = self.secrets_key
        return Sealer(None if key is None else key.get_secret_value())

    def outbound_policy(self) -> OutboundPolicy:
        """The check every URL the hub is asked to call (sources, webhooks) must pass."""
        return OutboundPolicy(self.allowed_outbound_hosts, allow_internal=not self.production)

    def web_redirects(self) -> list[str]:
        """The web app's registered redirect URIs (``<issuer>/app/callback`` by default)."""
        return self.web_redirect_uris or [self.issuer.rstrip("/") + "/app/callback"]
