"""The part of the caller's selection to push down to sources, printed as GraphQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

__all__ = ["ENVELOPE", "node_selection", "print_selection"]

# Asked of every source whatever the caller selected: the merge and the
# hub's objects need them.
ENVELOPE = ("id", "owner", "version", "createdAt", "updatedAt")


def _flatten(selections: Iterable[Selection]) -> list[SelectedField]:
    fields: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            fields.append(selection)
        elif isinstance(selection, InlineFragment | FragmentSpread):
            fields.extend(_flatten(selection.selections))
    return fields


def _merge(fields: Iterable[SelectedField]) -> dict[str, list[Selection]]:
    merged: dict[str, list[Selection]] = {}
    for field in fields:
        merged.setdefault(field.name, []).extend(field.selections)
    return merged


def print_selection(selections: Iterable[Selection], extra: Iterable[str] = ()) -> str:
    """``{ a b { c } }`` for the fields selected (aliases dropped, fragments inlined)."""
    merged = _merge(_flatten(selections))
    for name in extra:
        merged.setdefault(name, [])
    parts = []
    for name, children in merged.items():
        parts.append(f"{name} {print_selection(children)}" if children else name)
    return "{ " + " ".join(parts) + " }"


def node_selection(connection_field: Any, envelope: Iterable[str] = ENVELOPE) -> str:
    """From a connection field's selection, what to ask of each record (plus ``envelope``)."""
    nodes: list[Selection] = []
    for field in _flatten(connection_field.selections):
        if field.name == "edges":
            nodes.extend(
                child
                for edge_field in _flatten(field.selections)
                if edge_field.name == "node"
                for child in edge_field.selections
            )
        elif field.name == "nodes":
            nodes.extend(field.selections)
    return print_selection(nodes, envelope)
