"""Sensors: a community's or department's instruments, their rules and their current state.

Readings arrive as SenML (RFC 8428) at the owner's node (``node.sensors``);
the record carries what the sensor is, where, which device may write it, the
rules that watch it, and the state the node derives from its readings. The
sharing policy decides per field group: a neighbour may see that a sensor is
in alarm (``status``) without seeing its readings (``quantity.exact``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import FiniteFloat, StringConstraints, model_validator
from pydantic_core import PydanticCustomError
from sqlmodel import Field, SQLModel

from schema.enums import SensorKind, SensorRuleKind, SensorStatus, SeverityLevel
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import public_model, update_model
from schema.records._registry import Actor, Fact, Filter, RecordType, code
from schema.records._types import LongText, Name, RiskCategoryCode, ShortText
from schema.scopes import Scope
from schema.storage import PydanticJSON, UTCDateTime

__all__ = [
    "RECORD",
    "SENML_NAME",
    "SensorBase",
    "SensorCreate",
    "SensorPublic",
    "SensorReading",
    "SensorRule",
    "SensorState",
    "SensorUpdate",
    "SeriesPoint",
]

SENML_NAME = re.compile(r"^[A-Za-z0-9][-:./_A-Za-z0-9]{0,199}$")
"""A SenML name (RFC 8428 section 4.5.1): what a device calls the sensor (bn + n)."""

SenmlName = Annotated[str, StringConstraints(pattern=SENML_NAME.pattern)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
SenmlUnit = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MAX_RULES = 10
MAX_SERIES = 48


class SensorRule(SQLModel):
    """One rule that watches a sensor's readings in event time.

    ``above``/``below``: the value reaches ``level`` and stays beyond ``clear``
    (hysteresis; defaults to ``level``) for ``duration_s``; the alarm clears when
    a reading is back at or beyond ``clear``. ``rate``: the change over
    ``window_s`` reaches ``level`` (a rise; a fall when ``level`` is negative).
    ``silence``: no reading for ``silence_s`` makes the sensor stale; with
    ``flag`` it raises a maintenance flag (category ``sensor_fault``).
    """

    id: RuleId
    kind: SensorRuleKind
    level: FiniteFloat | None = None
    clear: FiniteFloat | None = None
    duration_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    window_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    silence_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    severity: SeverityLevel = SeverityLevel.III
    flag: bool = Field(default=True, description="Whether a crossing raises a risk flag")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        kind = self.kind
        if kind is SensorRuleKind.SILENCE:
            if self.silence_s is None:
                raise _rule_error("a silence rule needs silence_s")
            return self
        if self.level is None:
            raise _rule_error(f"a {kind.value} rule needs a level")
        if kind is SensorRuleKind.RATE:
            if self.window_s is None:
                raise _rule_error("a rate rule needs window_s")
            if self.level == 0:
                raise _rule_error("a rate rule's level must not be 0")
        clear = self.level if self.clear is None else self.clear
        rising = kind is SensorRuleKind.ABOVE or (kind is SensorRuleKind.RATE and self.level > 0)
        if (rising and clear > self.level) or (not rising and clear < self.level):
            raise _rule_error(
                f"the clear level {clear:g} is past the alarm level {self.level:g}"
                " (hysteresis clears on the safe side)"
            )
        return self

    @property
    def clear_level(self) -> float:
        """Where the alarm clears (the level itself without hysteresis)."""
        assert self.level is not None
        return self.level if self.clear is None else self.clear


def _rule_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_sensor_rule", message)


class SensorReading(SQLModel):
    """One reading: when (event time) and what, in the sensor's unit."""

    t: datetime
    v: float


class SeriesPoint(SQLModel):
    """One window of a sensor's readings: its start, how many, min, mean and max."""

    start: datetime
    count: int
    min: float
    mean: float
    max: float


class SensorBase(SQLModel):
    """A sensor (传感器): what it measures, where, which device writes it, and its rules."""

    name: Name = grouped(FieldGroup.IDENTITY)
    kind: SensorKind = grouped(FieldGroup.IDENTITY)
    code: SenmlName = grouped(
        FieldGroup.IDENTITY,
        description="Its SenML name (bn + n) in the device's readings; unique at its owner",
    )
    unit: SenmlUnit = grouped(
        FieldGroup.IDENTITY, description="SenML unit of its readings (m, mm, %LEL, ppm, deg)"
    )
    observed: ShortText = grouped(
        FieldGroup.IDENTITY, default="", description="The thing observed: 地下车库B2层, 东河桥"
    )
    category: RiskCategoryCode = grouped(
        FieldGroup.IDENTITY, max_length=40, description="Risk category of the flags its rules raise"
    )
    location: GeoPoint = grouped(FieldGroup.LOCATION_EXACT, sa_type=PydanticJSON(GeoPoint))
    address: ShortText = grouped(FieldGroup.LOCATION_EXACT, default="")
    device: str = grouped(
        FieldGroup.DESCRIPTION,
        min_length=1,
        max_length=64,
        description="OAuth client id of the device that may write its readings",
    )
    rules: list[SensorRule] = grouped(
        FieldGroup.DESCRIPTION,
        default_factory=list,
        max_length=MAX_RULES,
        sa_type=PydanticJSON(list[SensorRule]),
    )
    description: LongText = grouped(FieldGroup.DESCRIPTION, default="")

    @model_validator(mode="after")
    def _rule_ids_unique(self) -> Self:
        ids = [rule.id for rule in self.rules]
        if len(ids) != len(set(ids)):
            raise PydanticCustomError("duplicate_rule_id", "two rules share an id")
        return self


class SensorCreate(SensorBase):
    """A new sensor."""


class SensorState(SQLModel):
    """What the node derives from the readings: never written by staff."""

    status: SensorStatus = grouped(FieldGroup.STATUS, default=SensorStatus.OK)
    alarm_rules: list[str] = grouped(
        FieldGroup.STATUS, default_factory=list, sa_type=PydanticJSON(list[str])
    )
    last_reading_at: datetime | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)
    last_value: float | None = grouped(FieldGroup.QUANTITY_EXACT, default=None)
    series: list[SeriesPoint] = grouped(
        FieldGroup.QUANTITY_EXACT,
        default_factory=list,
        sa_type=PydanticJSON(list[SeriesPoint]),
        description="Windowed aggregates of the latest readings, oldest first",
    )


def _initial(actor: Actor, now: datetime) -> dict[str, Any]:
    return {"status": SensorStatus.OK, "alarm_rules": [], "series": []}


SensorUpdate = update_model(SensorBase, "SensorUpdate")
SensorPublic = public_model(SensorBase, "SensorPublic", state=SensorState)

RECORD = RecordType(
    name="Sensor",
    field_name="sensors",
    table_name="sensors",
    create=SensorCreate,
    update=SensorUpdate,
    public=SensorPublic,
    # Whoever follows incidents or verifies risks follows the sensors that warn of them.
    read_scopes=(Scope.INCIDENTS_READ, Scope.RISK_VERIFY),
    state=SensorState,
    initial_state=_initial,
    search_fields=("name", "code", "observed", "address"),
    filters=(
        Filter("kinds", list[SensorKind] | None, column="kind"),
        Filter("statuses", list[SensorStatus] | None, column="status"),
    ),
    facts=(
        Fact(
            "kind",
            str,
            of=lambda record: code(record.get("kind")),
            typical=lambda owner, caller: SensorKind.WATER_LEVEL.value,
            doc="SensorKind value",
        ),
    ),
)
