"""Settings of a community node (env ``LINLI_*`` or a TOML file)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from policies.source.settings import SourceSettings
from policies.static import TrustedCaller, is_placeholder

__all__ = ["NodeSettings", "TrustedCaller", "check_authentication"]


class NodeSettings(SourceSettings):
    """Who this node is and whom it trusts."""

    node_id: str | None = Field(None, description="Source id; defaults to org_code")
    org_code: str = Field("110105001001", description="Division code of the owning community")
    org_name: str = Field("示例社区 Example Community", description="Community name")
    neighbours: list[str] = Field(default_factory=list, description="Division codes of neighbours")
    # Risk flags to the district hub (node/flags); hub_url and its client: SourceSettings
    flag_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of one call to the hub (token or flag delivery)"
    )
    flag_retry_base_s: float = Field(
        1.0, gt=0, description="First retry delay of a flag delivery (doubles, with jitter)"
    )
    flag_retry_max_s: float = Field(
        5.0, gt=0, description="Longest retry delay of a delivery (so a hub back up is found soon)"
    )
    flag_poll_s: float = Field(
        5.0, gt=0, description="Seconds between outbox rounds when no new flag wakes the worker"
    )
    # Mutual aid (node/aid): what a requester learns once this community commits.
    aid_contact: str = Field(
        "",
        max_length=200,
        description="Contact for pick-ups, disclosed with the address once a request is committed",
    )
    # Sensor readings (node/sensors)
    sensor_raw_retention_s: float = Field(
        7 * 86400.0, gt=0, description="Raw sensor readings are kept this long, then downsampled"
    )
    sensor_aggregate_s: float = Field(
        3600.0,
        gt=0,
        le=86400,
        description="Window of the aggregates (count, min, mean, max) that downsampled readings "
        "and a sensor's series keep",
    )
    sensor_aggregate_retention_s: float = Field(
        180 * 86400.0, gt=0, description="Aggregates of sensor readings are kept this long"
    )
    sensor_max_future_s: float = Field(
        300.0, ge=0, description="Readings timed further ahead than this are refused"
    )
    sensor_max_batch: int = Field(
        5000, gt=0, le=100_000, description="Most SenML records in one pack"
    )
    sensor_max_inflight: int = Field(
        2,
        gt=0,
        le=64,
        description="SenML packs a node takes at once (one process stores one at a time); "
        "the others wait their turn",
    )
    sensor_queue_wait_s: float = Field(
        5.0,
        ge=0,
        description="How long a pack waits for its turn before it is refused (HTTP 429, "
        "INGEST_BUSY) to be sent again",
    )
    sensor_check_s: float = Field(
        10.0, gt=0, description="Seconds between checks for silent sensors and retention rounds"
    )
    # Sensor readings over MQTT (node/mqtt): subscribed when mqtt_url is set
    mqtt_url: str | None = Field(
        None,
        pattern=r"^mqtts?://[^/@:]+(:[0-9]+)?/?$",
        description="MQTT broker of the sensors, mqtt://host:1883 (mqtts:// for TLS); the node"
        " subscribes to <mqtt_topic_prefix>/<node id>/devices/+/sensors/# with QoS 1",
    )
    mqtt_username: str | None = Field(None, description="The node's user name at the broker")
    mqtt_password: SecretStr | None = Field(
        None, description="The node's password at the broker (never logged)"
    )
    mqtt_client_id: str | None = Field(
        None,
        description="MQTT client id; the broker keeps this node's session (subscription and"
        " unacknowledged readings) under it: keep it stable. None: linli-node-<node id>",
    )
    mqtt_topic_prefix: str = Field(
        "linli", pattern=r"^[A-Za-z0-9_-]+$", description="First level of the sensor topics"
    )
    mqtt_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of connecting and subscribing to the broker"
    )
    mqtt_keepalive_s: int = Field(
        30, ge=5, description="MQTT keep-alive: a silent broker is found dead within 1.5 times it"
    )
    mqtt_reconnect_base_s: float = Field(
        0.5, gt=0, description="First delay before reconnecting to the broker (doubles, jitter)"
    )
    mqtt_reconnect_max_s: float = Field(
        15.0, gt=0, description="Longest delay between reconnection attempts (they never stop)"
    )
    mqtt_batch: int = Field(
        100,
        ge=1,
        le=1000,
        description="Most MQTT messages stored in one transaction (acknowledged after it)",
    )

    @property
    def source_id(self) -> str:
        return self.node_id or self.org_code

    @property
    def mqtt_identifier(self) -> str:
        """The MQTT client id, stable across restarts."""
        return self.mqtt_client_id or f"linli-node-{self.source_id}"

    @property
    def delivers_flags(self) -> bool:
        """Whether the node delivers its flags to a hub."""
        return self.reports_to_hub

    @property
    def verifies_tokens(self) -> bool:
        """Whether the node checks OAuth access tokens from the hub."""
        return self.token_issuer is not None and self.jwks_url is not None

    @model_validator(mode="after")
    def _callers_are_authenticated_properly(self) -> Self:
        check_authentication(self)
        return self


def check_authentication(settings: NodeSettings) -> None:
    """Refuse settings a node cannot authenticate callers safely with."""
    if (settings.token_issuer is None) != (settings.jwks_url is None):
        raise ValueError("token_issuer and jwks_url must be set together")
    hub = (settings.hub_url, settings.hub_client_id, settings.hub_client_secret)
    if any(value is not None for value in hub) and not settings.delivers_flags:
        raise ValueError("hub_url, hub_client_id and hub_client_secret must be set together")
    secret = settings.hub_client_secret
    if settings.production and secret is not None:
        value = secret.get_secret_value()
        if is_placeholder(value):
            raise ValueError("hub_client_secret is a placeholder or too short for production")
    if settings.production and settings.mqtt_url is not None:
        password = settings.mqtt_password
        if settings.mqtt_username is None or password is None:
            raise ValueError("a production node needs mqtt_username and mqtt_password")
        if is_placeholder(password.get_secret_value()):
            raise ValueError("mqtt_password is a placeholder or too short for production")
    if settings.production:
        for caller in settings.trusted_callers:
            if is_placeholder(caller.token):
                raise ValueError(
                    f"trusted caller {caller.client_id!r} has a placeholder or short token;"
                    " and production accepts no static tokens at all"
                )
        if settings.trusted_callers:
            raise ValueError(
                "trusted_callers (static bearer tokens) are for development and tests only;"
                " production nodes accept OAuth access tokens (set token_issuer and jwks_url)"
            )
        if not settings.verifies_tokens:
            raise ValueError("a production node needs token_issuer and jwks_url")
