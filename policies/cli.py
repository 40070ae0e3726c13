"""`linli audit ...` and `linli policy ...`: verify the audit chain, explain a decision."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Protocol

import httpx
import typer
from rich.console import Console
from rich.table import Table

from policies.anchors import AnchorUnavailable, Witness, fetch_witness, read_checkpoint
from policies.audit import AuditLogUnreadable, ChainReport, verify_chain
from policies.caller import Caller
from policies.engine import Disclosure, Mode, Owner, PolicyEngine
from policies.errors import PolicyError
from policies.mask import explain
from policies.purposes import PurposeUnknown, purpose_from_header
from policies.records import RECORD_TYPES, field_groups
from policies.tokens import JwksCache
from schema.codes import DEFAULT_PURPOSES
from schema.enums import OrgKind, SeverityLevel
from schema.runtime.settings import ConfigError, ServiceSettings, load_settings
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
    hub_url: Annotated[
        str | None,
        typer.Option(help="Check against every row the hub anchored (with --source)"),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="The source id whose chain this is (with --hub-url)")
    ] = None,
    anchor_secret: Annotated[
        str | None,
        typer.Option(
            envvar="LINLI_AUDIT_ANCHOR_SECRET",
            help="The source's audit_anchor_secret: also check that the hub's last anchor"
            " was signed by the source (with --hub-url)",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint saved from the hub (its JWT, or JSON with a 'checkpoint'"
            " member): check against its head; signature checked when --hub-url is given",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Re-hash every row of audit_log; exit 1 naming the first missing or changed row."""
    try:
        report, anchor = asyncio.run(
            _verify(database_url, hub_url, source, checkpoint, anchor_secret)
        )
    except (AuditLogUnreadable, AnchorUnavailable) as error:
        errors.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if report.intact:
        console.print(
            f"[green]chain intact: {report.rows} rows[/]{anchor}", highlight=False, soft_wrap=True
        )
        return
    errors.print(
        f"[red]chain broken at seq {report.first_bad}[/]: {report.problem}"
        f" ({report.rows} rows before it are intact)",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


class _NodeFacts(Protocol):
    """What ``explain`` reads of a node's settings (loaded through the ``linli.settings`` entry
    point, so this package never imports the node)."""

    org_code: str
    district: str
    neighbours: list[str]
    policy_file: Path | None


def _node_settings(config: Path | None) -> _NodeFacts | None:
    if config is None:
        return None
    (node_class,) = (ep.load() for ep in entry_points(group="linli.settings", name="node"))
    try:
        settings: _NodeFacts = load_settings(node_class, config)
    except ConfigError as error:
        errors.print(f"[red]bad node settings:[/] {error}")
        raise typer.Exit(2) from None
    return settings


async def _verify(
    url: str,
    hub_url: str | None,
    source: str | None,
    checkpoint: Path | None,
    anchor_secret: str | None = None,
) -> tuple[ChainReport, str]:
    """The chain report, and what it was checked against (for the intact message)."""
    if hub_url is not None and source is None and checkpoint is None:
        raise AnchorUnavailable("--hub-url needs --source (the id the hub knows the source by)")
    if checkpoint is None and hub_url is None:
        return await verify_chain(url), " (no anchor given: truncation cannot be ruled out)"
    async with httpx.AsyncClient(timeout=10.0) as http:
        if checkpoint is not None:
            text = (await asyncio.to_thread(checkpoint.read_text, "utf-8")).strip()
            if text.startswith("{"):
                try:
                    text = str(json.loads(text)["checkpoint"])
                except (ValueError, KeyError, TypeError):
                    raise AnchorUnavailable(f"{checkpoint} holds no 'checkpoint'") from None
            jwks = None if hub_url is None else _jwks(http, hub_url)
            saved = await read_checkpoint(text, jwks, None)
            witness = Witness(saved, {saved.seq: saved.hash})
        else:
            assert hub_url is not None
            assert source is not None
            witness = await fetch_witness(http, hub_url, source)
            by_source = anchor_secret is None or witness.signed_by_source(anchor_secret)
            if witness.checkpoint is not None and not by_source:
                raise AnchorUnavailable(
                    f"the hub's last anchor of {source} is not signed with this"
                    " audit_anchor_secret (made up, or the secret changed since)"
                )
    report = await verify_chain(url, witness=witness.hashes)
    held = witness.checkpoint
    if held is None:
        return report, f"; the hub has no anchor of {source} yet"
    signed = "signed by the hub" if held.signed else "signature not checked (give --hub-url)"
    return report, (
        f"; matches the anchor of {held.source} up to seq {held.seq}"
        f" ({len(witness.hashes)} rows witnessed, checkpoint {signed})"
    )


def _jwks(http: httpx.AsyncClient, hub_url: str) -> JwksCache:
    return JwksCache(f"{hub_url.rstrip('/')}/.well-known/jwks.json", http)


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
    record_type: Annotated[str, typer.Option("--type", help="Record type, e.g. Resource")],
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="The data owner's organisation code (default: the node's)"),
    ] = None,
    node_config: Annotated[
        Path | None,
        typer.Option(
            "--node-config",
            help="The owner node's TOML settings: its code, district, neighbours and policy file",
        ),
    ] = None,
    owner_district: Annotated[
        str | None,
        typer.Option(
            "--owner-district",
            help="County-level code of the owner's district (default: the node's, or the"
            " first six digits of --owner)",
        ),
    ] = None,
    caller_kind: Annotated[
        str, typer.Option("--caller-kind", help="community, department, hub or public")
    ] = "community",
    caller_district: Annotated[
        str | None,
        typer.Option("--caller-district", help="The caller's district (default: the owner's)"),
    ] = None,
    neighbours: Annotated[
        str | None,
        typer.Option(
            "--neighbours", help="The owner's neighbours, comma-separated (default: the node's)"
        ),
    ] = None,
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
        Path | None,
        typer.Option(
            "--policy-file", help="The owner's extra Cedar policy file (default: the node's)"
        ),
    ] = None,
) -> None:
    """Per field group: shown exactly, approximated or hidden, and which policy decided."""
    if record_type not in RECORD_TYPES:
        raise typer.BadParameter(f"{record_type!r}: choose from {', '.join(RECORD_TYPES)}")
    node = _node_settings(node_config)
    owner = owner or (node.org_code if node else None)
    if not owner:
        raise typer.BadParameter("give --owner, or --node-config to read it from the node")
    if owner_district is None:
        owner_district = node.district if node and node.org_code == owner else owner[:6]
    if neighbours is not None:
        neighbour_codes = frozenset(n.strip() for n in neighbours.split(",") if n.strip())
    elif node is not None and node.org_code == owner:
        neighbour_codes = frozenset(node.neighbours)
    else:
        neighbour_codes = frozenset()
        errors.print(
            f"[yellow]note:[/] {owner}'s neighbours are unknown (give --node-config or"
            " --neighbours), so no caller is judged a neighbour"
        )
    if policy_file is None and node is not None and node.org_code == owner:
        policy_file = node.policy_file
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
        neighbours=neighbour_codes,
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
