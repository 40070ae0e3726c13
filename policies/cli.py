"""`linli audit ...` and `linli policy ...`: verify the audit chain, explain a decision."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from policies.audit import verify_chain
from policies.caller import Caller
from policies.engine import Disclosure, Mode, Owner, PolicyEngine
from policies.errors import PolicyError
from policies.mask import explain
from policies.purposes import PurposeUnknown, purpose_from_header
from policies.records import RECORD_TYPES, field_groups
from schema.codes import DEFAULT_PURPOSES
from schema.enums import OrgKind, SeverityLevel
from schema.runtime.settings import ServiceSettings, load_settings
from schema.scopes import Scope

__all__ = ["audit_app", "policy_app"]

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
policy_app = typer.Typer(help="Sharing policies.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

DEFAULT_SCOPES = (
    Scope.INCIDENTS_READ,
    Scope.RESOURCES_READ,
    Scope.SHELTERS_READ,
    Scope.VOLUNTEERS_READ,
    Scope.PII_READ,
    Scope.RISK_VERIFY,
    Scope.ALERTS_READ,
    Scope.AID_REQUEST,
    Scope.AID_RESPOND,
)


@audit_app.callback()
def audit() -> None:
    """The hash-chained audit log."""


@policy_app.callback()
def policy() -> None:
    """Sharing policies."""


_SHOWN = {
    Disclosure.EXACT: "[green]shown exactly[/]",
    Disclosure.APPROXIMATE: "[yellow]approximated[/]",
    Disclosure.DENY: "[red]hidden[/]",
}


@audit_app.command("verify")
def audit_verify(
    database_url: Annotated[
        str,
        typer.Option(envvar="LINLI_DATABASE_URL", help="SQLAlchemy async URL of the database"),
    ],
) -> None:
    """Re-hash every row of audit_log; exit 1 naming the first row that breaks the chain."""
    report = asyncio.run(verify_chain(database_url))
    if report.intact:
        console.print(f"[green]chain intact: {report.rows} rows[/]")
        return
    errors.print(
        f"[red]chain broken at seq {report.first_bad}[/]: {report.problem}"
        f" ({report.rows} rows before it are intact)"
    )
    raise typer.Exit(1)


def _org_kind(value: str) -> OrgKind:
    try:
        return OrgKind(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: choose from {', '.join(k.value for k in OrgKind)}"
        ) from None


@policy_app.command("explain")
def policy_explain(
    caller: Annotated[str, typer.Option("--caller", help="The caller's organisation code")],
    owner: Annotated[str, typer.Option("--owner", help="The data owner's organisation code")],
    owner_district: Annotated[
        str, typer.Option("--owner-district", help="County-level code of the owner's district")
    ],
    record_type: Annotated[str, typer.Option("--type", help="Record type, e.g. Resource")],
    caller_kind: Annotated[
        str, typer.Option("--caller-kind", help="community, department, hub or public")
    ] = "community",
    caller_district: Annotated[
        str | None,
        typer.Option("--caller-district", help="The caller's district (default: the owner's)"),
    ] = None,
    neighbours: Annotated[
        str, typer.Option("--neighbours", help="The owner's neighbours, comma-separated")
    ] = "",
    mode: Annotated[Mode, typer.Option("--mode", help="normal or emergency")] = Mode.NORMAL,
    level: Annotated[
        SeverityLevel | None, typer.Option("--level", help="Emergency level I-IV")
    ] = None,
    scopes: Annotated[
        str | None,
        typer.Option("--scopes", help="The caller's scopes, space-separated (default: all read)"),
    ] = None,
    purpose: Annotated[
        str,
        typer.Option(
            "--purpose",
            help="The stated purpose: a code of LINLI_PURPOSES"
            f" (default: {', '.join(DEFAULT_PURPOSES)})",
        ),
    ] = "",
    policy_file: Annotated[
        Path | None, typer.Option("--policy-file", help="The owner's extra Cedar policy file")
    ] = None,
) -> None:
    """Per field group: shown exactly, approximated or hidden, and which policy decided."""
    if record_type not in RECORD_TYPES:
        raise typer.BadParameter(f"{record_type!r}: choose from {', '.join(RECORD_TYPES)}")
    try:
        # The list the services read (LINLI_PURPOSES), so the answer is the one they give.
        purpose = purpose_from_header(purpose, load_settings(ServiceSettings).purposes)
    except PurposeUnknown as error:
        raise typer.BadParameter(error.message, param_hint="--purpose") from None
    try:
        engine = PolicyEngine(policy_file)
    except PolicyError as error:
        errors.print(f"[red]invalid policy:[/] {error.message}")
        raise typer.Exit(1) from None
    kind = _org_kind(caller_kind)
    granted = frozenset(scopes.split() if scopes is not None else DEFAULT_SCOPES)
    who = Caller(
        org=caller,
        org_kind=kind,
        scopes=granted,
        client_id="explain",
        subject="explain",
        district=caller_district or (None if kind is OrgKind.PUBLIC else owner_district),
    )
    whose = Owner(
        org=owner,
        kind=OrgKind.COMMUNITY,
        district=owner_district,
        neighbours=frozenset(n.strip() for n in neighbours.split(",") if n.strip()),
    )
    explanation = explain(
        who,
        whose,
        record_type,
        mode,
        engine=engine,
        purpose=purpose,
        emergency_level=level if mode is Mode.EMERGENCY else None,
    )
    groups = field_groups(record_type)
    table = Table(
        title=(
            f"{caller} ({kind.value}, {explanation.relation.value}) reading {owner}'s"
            f" {record_type} records, {mode.value} mode"
        )
    )
    table.add_column("field group")
    table.add_column("fields")
    table.add_column("disclosure")
    table.add_column("decided by")
    for group, decision in explanation.decisions.items():
        fields = ", ".join(name for name, g in groups.items() if g is group)
        table.add_row(
            group.value,
            fields,
            _SHOWN[decision.disclosure],
            ", ".join(decision.policy_ids) or f"- ({decision.reason})",
        )
    console.print(table)
    if explanation.facts:
        facts = ", ".join(f"{k}={v}" for k, v in explanation.facts.items())
        console.print(f"for records with {facts}")
