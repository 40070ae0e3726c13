"""What a situation report says: its kind and its fields, with their limits (one declaration)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schema.errors import InvalidInput

__all__ = [
    "FIELD_LIMITS",
    "ReportFields",
    "ReportKind",
    "ReportStatus",
    "validated_fields",
]


class ReportKind(enum.StrEnum):
    """初报, 续报, 终报: the reports an incident owes the level above, in this order."""

    INITIAL = "initial"
    FOLLOW_UP = "follow_up"
    FINAL = "final"

    @property
    def name_zh(self) -> str:
        """How a department's form names it."""
        return {"initial": "初报", "follow_up": "续报", "final": "终报"}[self.value]


class ReportStatus(enum.StrEnum):
    """A report being written, or its last revision sent."""

    DRAFT = "draft"
    SUBMITTED = "submitted"


Text500 = Annotated[str, Field(max_length=500)]
Text4000 = Annotated[str, Field(max_length=4000)]
Count = Annotated[int, Field(ge=0, le=100_000_000)]


class ReportFields(BaseModel):
    """The required content of a situation report (事件信息报告要素)."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: datetime | None = Field(None, description="时间 When it started")
    place: Text500 = Field("", description="地点 Where")
    summary: Text4000 = Field("", description="事件经过 What happened")
    deaths: Count = Field(0, description="死亡 Deaths")
    injured: Count = Field(0, description="受伤 Injured")
    missing: Count = Field(0, description="失踪 Missing")
    affected_people: Count = Field(0, description="受影响人数 People affected")
    measures: Text4000 = Field("", description="已采取措施 Measures taken")
    resources_used: Text4000 = Field("", description="投入力量和物资 Resources used")
    needs: Text4000 = Field("", description="需要支援事项 Needs")


FIELD_LIMITS: dict[str, int] = {
    name: next(m.max_length for m in info.metadata if hasattr(m, "max_length"))
    for name, info in ReportFields.model_fields.items()
    if any(hasattr(m, "max_length") for m in info.metadata)
}
"""Each text field's limit in characters."""


def validated_fields(values: dict[str, object]) -> ReportFields:
    """``values`` as report fields; a field over its limit is ``InvalidInput`` naming it."""
    try:
        return ReportFields.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="fields") from exc
