"""How a record family is derived from its base model.

A record type is written once, as ``<Type>Base``. From it come:

- ``<Type>Create``: the base itself (a subclass, for a distinct name);
- ``<Type>Update``: every field optional, plus the ``expectedVersion`` that
  optimistic concurrency needs;
- ``<Type>Public``: what may leave the owner: the record's envelope (global
  id, owner, version, times) and every base field nullable, because the
  sharing policy can hide or approximate any field group.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import create_model
from pydantic.fields import FieldInfo
from sqlmodel import SQLModel

from schema.fields import FieldGroup, grouped

__all__ = ["QuantityBand", "RecordEnvelope", "public_model", "update_model"]


class QuantityBand(SQLModel):
    """An approximate quantity: the true value lies in ``[low, high]`` (``high`` null: no bound)."""

    low: int
    high: int | None = None
    label: str


class RecordEnvelope(SQLModel):
    """Fields every disclosed record carries whatever the policy says."""

    id: str = grouped(FieldGroup.IDENTITY, description="Global id: <Type>:<owner>:<local>")
    owner: str = grouped(FieldGroup.IDENTITY, description="Source id of the owning organisation")
    version: int = grouped(FieldGroup.STATUS, description="Optimistic-concurrency version")
    created_at: datetime = grouped(FieldGroup.STATUS)
    updated_at: datetime = grouped(FieldGroup.STATUS)


def _optional(info: FieldInfo) -> tuple[Any, FieldInfo]:
    copy = FieldInfo.merge_field_infos(info, default=None)
    annotation = info.annotation
    return (annotation | None, copy)


def update_model(base: type[SQLModel], name: str) -> type[SQLModel]:
    """All of ``base``'s fields optional, plus the required ``expected_version``."""
    fields: dict[str, Any] = {n: _optional(i) for n, i in base.model_fields.items()}
    fields["expected_version"] = (
        int,
        FieldInfo(description="The version the change was made against; stale is refused"),
    )
    model: type[SQLModel] = create_model(name, __base__=SQLModel, **fields)
    model.__doc__ = f"A partial update of {base.__name__.removesuffix('Base')}."
    return model


def public_model(
    base: type[SQLModel], name: str, extra: dict[str, Any] | None = None
) -> type[SQLModel]:
    """The disclosed form of ``base``: envelope plus every base field nullable."""
    fields: dict[str, Any] = {n: _optional(i) for n, i in base.model_fields.items()}
    fields.update(extra or {})
    model: type[SQLModel] = create_model(name, __base__=RecordEnvelope, **fields)
    model.__doc__ = base.__doc__
    return model
