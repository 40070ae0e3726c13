"""The cost budget of one hub request, checked before anything is fanned out.

A federated list field asks every planned source for up to ``first`` records, so
one document with many aliases of ``resources(first: 500)`` costs the sources
far more than it looks. The cost of a query is the sum, over its federated list
fields (each alias counted, fragments expanded, ``@skip``/``@include`` ignored so
the cost is an upper bound), of planned sources × requested page size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from hub.federation.context import HubContext
from schema.api.pagination import DEFAULT_PAGE_SIZE
from schema.store.specs import SPECS

__all__ = ["QUERY_TOO_COSTLY", "CostBudget", "query_cost"]

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
"""The stable code of a request refused for its cost."""

# The hub's federated list fields (GraphQL names, which are also the capabilities).
_LIST_FIELDS = frozenset(spec.field_name for spec in SPECS.values())


def query_cost(
    context: HubContext,
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """Planned sources × page size, summed over the federated list fields selected."""
    cost = 0
    for field in _root_fields(selections, fragments, set()):
        name = field.name.value
        if name not in _LIST_FIELDS:
            continue
        arguments = {
            arg.name.value: value_from_ast_untyped(arg.value, variables)
            for arg in field.arguments or ()
        }
        first = arguments.get("first")
        size = first if isinstance(first, int) and first >= 0 else DEFAULT_PAGE_SIZE
        where = arguments.get("where")
        planned = context.federation.plan(name, where if isinstance(where, dict) else None)
        cost += len(planned) * size
    return cost


def _root_fields(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    visited: set[str],
) -> Iterator[FieldNode]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, visited)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visited:  # validation refuses both
                continue
            yield from _root_fields(fragment.selection_set, fragments, visited | {name})


class CostBudget(SchemaExtension):
    """Refuses a query over ``limit`` with ``QUERY_TOO_COSTLY`` before any source is called."""

    limit: ClassVar[int] = 20_000

    @classmethod
    def limited_to(cls, limit: int) -> type[CostBudget]:
        """The extension with its limit (a class: strawberry builds one per request)."""
        return type("CostBudget", (cls,), {"limit": limit})

    def on_execute(self) -> Iterator[None]:
        cost = self._cost()
        if cost is not None and cost > self.limit:
            message = (
                f"the query would cost {cost} (planned sources × page size over its list"
                f" fields); the limit is {self.limit}"
            )
            extensions = {"code": QUERY_TOO_COSTLY, "cost": cost, "limit": self.limit}
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(message, extensions=extensions)]
            )
        yield

    def _cost(self) -> int | None:
        """The cost of the operation to run, if it is a hub query."""
        execution = self.execution_context
        context, document = execution.context, execution.graphql_document
        if not isinstance(context, HubContext) or document is None:
            return None
        operation = get_operation_ast(document, execution.operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        return query_cost(context, operation.selection_set, fragments, execution.variables or {})
