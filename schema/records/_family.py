"""How a record family is derived from its base model.

A record type is written once, as ``<Type>Base``. From it come:

- ``<Type>Create``: the base itself (a subclass, for a distinct name);
- ``<Type>Update``: every field optional, plus the ``expectedVersion`` that
  optimistic concurrency needs;
- ``<Type>Public``: what may leave the owner: the record's envelope (global
  id, owner, version, times) and every base (and workflow state) field nullable, because the
  sharing policy can hide or approximate any field group.
"""

from __future__ import annotations

from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

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
    # Constraints and validators move inside the Optional, so None skips them.
    inner: Any = info.annotation
    if get_origin(inner) in (Union, UnionType) and type(None) in get_args(inner):
        inner = Union[tuple(a for a in get_args(inner) if a is not type(None))]  # noqa: UP007
    # SQLModel's own column metadata (sa_type, ...) is for tables, not validation.
    constraints = [m for m in info.metadata if not type(m).__module__.startswith("sqlmodel")]
    if constraints:
        inner = Annotated[(inner, *constraints)]
    copy = FieldInfo.merge_field_infos(info, default=None)
    copy.default_factory = None
    copy.metadata = []
    return (inner | None, copy)


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
    base: type[SQLModel],
    name: str,
    extra: dict[str, Any] | None = None,
    *,
    state: type[SQLModel] | None = None,
) -> type[SQLModel]:
    """The disclosed form of ``base``: envelope plus every field of base and state nullable."""
    fields: dict[str, Any] = {n: _optional(i) for n, i in base.model_fields.items()}
    if state is not None:
        fields.update({n: _optional(i) for n, i in state.model_fields.items()})
    fields.update(extra or {})
    model: type[SQLModel] = create_model(name, __base__=RecordEnvelope, **fields)
    model.__doc__ = base.__doc__
    return model
