"""The GraphQL endpoint every service mounts: limits, production hardening, error codes."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import strawberry
from cross_web import HTTPException
from graphql import (
    ASTValidationRule,
    FloatValueNode,
    GraphQLError,
    GraphQLSyntaxError,
    IntValueNode,
    StringValueNode,
)
from pydantic import ValidationError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult, has_object_definition
from strawberry.types.enum import has_enum_definition
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from schema.errors import InvalidInput, LinliError
from schema.runtime.db import storage_failure
from schema.runtime.settings import ServiceSettings

__all__ = [
    "NON_FINITE_NUMBER",
    "NUL_CHARACTER",
    "VALIDATION_CACHE_SIZE",
    "LinliGraphQLRouter",
    "build_schema",
    "decode_request_json",
    "error_code",
    "graphql_json",
    "root_type",
]

log = logging.getLogger("linli.graphql")

VALIDATION_CACHE_SIZE = 256
"""Parsed and validated documents kept per process (shared by every schema of that size)."""

NUL_CHARACTER = "NUL_CHARACTER"
"""The code of a request whose strings hold U+0000 (in a variable or a string literal)."""
NON_FINITE_NUMBER = "NON_FINITE_NUMBER"
"""The code of a number that is no finite float (``1e400``, ``NaN``), as variable or literal."""

# Messages of graphql-core's and strawberry's limit rules -> our codes.
_LIMIT_CODES = (
    ("exceeds maximum operation depth", "QUERY_TOO_DEEP"),
    ("aliases found", "TOO_MANY_ALIASES"),
    ("more than", "TOO_MANY_TOKENS"),  # "Document contains more than N tokens."
    ("introspection is disabled", "INTROSPECTION_DISABLED"),
    ("introspection", "INTROSPECTION_DISABLED"),
)


def error_code(error: GraphQLError) -> str:
    """Give every GraphQL error a stable ``extensions.code`` (and return it)."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, LinliError):
        extensions.update(original.extensions)
    elif isinstance(original, ValidationError):
        extensions.update(InvalidInput.from_validation(original).extensions)
        error.message = str(InvalidInput.from_validation(original))
    elif isinstance(error, GraphQLSyntaxError) and "tokens" not in error.message:
        extensions["code"] = "GRAPHQL_PARSE_FAILED"
    elif (original is None or error.path is None) and "code" not in extensions:
        # No path: the document or its variables failed before execution.
        code = "GRAPHQL_VALIDATION_FAILED"
        for fragment, limit_code in _LIMIT_CODES:
            if fragment.lower() in error.message.lower():
                code = limit_code
                break
        extensions["code"] = code
    elif original is not None and (failure := storage_failure(original)) is not None:
        extensions.update(failure.extensions)
        error.message = failure.message
    elif original is not None and "code" not in extensions:
        # An unexpected failure: say so, but never leak its text to callers.
        extensions["code"] = "INTERNAL"
        error.message = "internal error"
    error.extensions = extensions
    return str(extensions["code"])


class _Schema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # A subscription runs over a WebSocket (``subscribe``); executed as a query, its
        # resolver's stream answered null for a non-null field (INTERNAL). Refused instead.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            unexpected = not isinstance(original, LinliError | ValidationError | None)
            if unexpected and original is not None and storage_failure(original) is not None:
                log.warning("database failure: %s", str(original).splitlines()[0])
            elif unexpected and error.path is not None:
                log.error("resolver failed", exc_info=original)


class StorableLiterals(ASTValidationRule):
    """Literals of a document obey what the JSON body is held to (``decode_request_json``):
    no string holds U+0000, no number is beyond the float range (``1e400``)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError(
                    "a string holds a NUL character (\\u0000)",
                    node,
                    extensions={"code": NUL_CHARACTER},
                )
            )

    def enter_float_value(self, node: FloatValueNode | IntValueNode, *_: Any) -> None:
        # An integer literal is a valid Float too: 1 followed by 400 zeros is 1e400.
        if not math.isfinite(float(node.value)):
            self.report_error(
                GraphQLError(
                    f"{node.value[:40]} is not a finite number",
                    node,
                    extensions={"code": NON_FINITE_NUMBER},
                )
            )

    enter_int_value = enter_float_value


def root_type(name: str, fields: dict[str, Any]) -> type:
    """A root type (Query, Mutation) assembled from fields built elsewhere."""
    return strawberry.type(type(name, (), fields))


def build_schema(
    *,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
    settings: ServiceSettings,
    extensions: list[type[SchemaExtension] | SchemaExtension] | None = None,
    types: list[type] | None = None,
) -> strawberry.Schema:
    """A schema with the service's limits; production turns off introspection and suggestions."""
    # The limit rules are built once per schema: the validation cache is keyed by the
    # rule classes, and limiters built per request would make every key new.
    limits = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        StorableLiterals,
    ]
    extra: list[Any] = [
        lambda: ParserCache(maxsize=VALIDATION_CACHE_SIZE),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        *(extensions or []),
    ]
    if settings.production:
        extra.append(DisableIntrospection)
    return _Schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        extensions=extra,
        types=types or [],
        config=_config(settings),
    )


def _config(settings: ServiceSettings | None = None) -> StrawberryConfig:
    production = settings is not None and settings.production
    return StrawberryConfig(disable_field_suggestions=production)


# Every schema names fields and enum values alike; ``graphql_json`` names them the same way.
_NAMES = _config().name_converter


def graphql_json(value: Any) -> Any:
    """``value`` (a strawberry object, enum, list or scalar) as a GraphQL answer carries it.

    Field names and enum values are the schema's (``flagId``, ``VERIFIED``), taken from
    the same definitions the schema is built from. Only plain fields are read: a field
    with a resolver is left out (it needs a request to run).
    """
    if value is None or isinstance(value, bool):
        return value
    if has_enum_definition(type(value)):
        enum_type = type(value).__strawberry_definition__
        return next(
            _NAMES.from_enum_value(enum_type, member)
            for member in enum_type.values
            if member.value == value.value
        )
    if has_object_definition(value):
        return {
            _NAMES.from_field(field): graphql_json(getattr(value, field.python_name))
            for field in value.__strawberry_definition__.fields
            if field.base_resolver is None
        }
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [graphql_json(item) for item in value]
    if isinstance(value, int | float | str):
        return value
    raise TypeError(f"no GraphQL form for a {type(value).__name__}")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(
            f"{text[:40]} is not a finite number", code=NON_FINITE_NUMBER, field="body"
        )
    return value


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not a JSON number", code=NON_FINITE_NUMBER, field="body")


# A ``\uD800``-``\uDFFF`` escape: only then can a decoded string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A ``\u0000`` escape not itself escaped (an even run of backslashes before it): the only
# way a JSON text holds U+0000, which PostgreSQL's text cannot store.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def decode_request_json(data: str | bytes) -> object:
    """A request body's JSON; what no handler should see is refused with a stable code."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise InvalidInput(
            "the request body is not valid UTF-8", code="INVALID_UTF8", field="body"
        ) from None
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the request body is not JSON: {exc.msg} at character {exc.pos}",
            code="INVALID_JSON",
            field="body",
        ) from None
    except RecursionError:
        raise InvalidInput(
            "the request body's JSON is nested too deeply", code="JSON_TOO_DEEP", field="body"
        ) from None
    if _NUL_ESCAPE.search(text):
        raise InvalidInput(
            "the request body holds a NUL character (\\u0000)", code=NUL_CHARACTER, field="body"
        )
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                "the request body holds a lone UTF-16 surrogate (\\uD800-\\uDFFF)",
                code="INVALID_UNICODE",
                field="body",
            ) from None
    return value


class LinliGraphQLRouter(GraphQLRouter[Any, None]):
    """Strawberry's FastAPI router with stable error codes on every error.

    Strawberry's own IDE page is off: it needs the context (a token) and a CDN;
    ``schema.runtime.graphiql`` serves a self-contained one in front of the router.
    """

    def __init__(self, schema: strawberry.Schema, **options: Any) -> None:
        super().__init__(schema, graphql_ide=None, **options)

    def decode_json(self, data: str | bytes) -> object:
        value = decode_request_json(data)
        if not isinstance(value, dict | list):
            raise InvalidInput(
                "a GraphQL request is a JSON object", code="INVALID_REQUEST", field="body"
            )
        return value

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Serve the request; strawberry's own refusals of a request get a stable code too."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            if refused.status_code != 400:
                raise
            raise InvalidInput(refused.reason, code="INVALID_REQUEST", field="body") from None

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        for error in result.errors or []:
            error_code(error)
        return process_result(result)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Any
    ) -> Any:
        """The answer, with ``Retry-After`` when an error says when to try again."""
        response = super().create_response(response_data, sub_response)
        answers = response_data if isinstance(response_data, list) else [response_data]
        waits = [_retry_after(error) for answer in answers for error in answer.get("errors") or []]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None and "retry-after" not in response.headers:
            response.headers["Retry-After"] = str(wait)
        return response


def _retry_after(error: object) -> int | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    wait = extensions.get("retryAfter") if isinstance(extensions, dict) else None
    return wait if isinstance(wait, int) else None
