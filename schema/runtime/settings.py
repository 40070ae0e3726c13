"""Settings common to every service (pydantic-settings, env prefix ``LINLI_``)."""

from __future__ import annotations

import enum
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schema.codes import DEFAULT_PURPOSES, PURPOSE_CODE_PATTERN

__all__ = ["ConfigError", "Environment", "ServiceSettings", "load_settings", "settings_rows"]


class ConfigError(Exception):
    """Settings a service cannot start with; the message names the file or variable and the fix."""


class Environment(enum.StrEnum):
    """Development turns on GraphiQL and introspection; production turns them off."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses add their own and their own env prefix."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=None, extra="forbid")

    environment: Environment = Field(
        Environment.DEVELOPMENT, description="development or production"
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./linli.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://...",
    )
    host: str = Field("127.0.0.1", description="Interface to listen on")
    port: int = Field(8001, ge=1, le=65535, description="Port to listen on")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(True, description="One JSON object per log line")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body accepted")
    max_query_depth: int = Field(12, ge=2, description="Deepest GraphQL selection accepted")
    max_aliases: int = Field(30, ge=1, description="Most aliases in one GraphQL document")
    max_tokens: int = Field(4000, ge=100, description="Most tokens in one GraphQL document")
    cursor_secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        description="Signs paging cursors; set the same value on every replica of a service",
    )
    purposes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PURPOSES),
        description="Purposes a caller may state in X-Linli-Purpose (code: label; JSON object,"
        " or a [purposes] table); any other is refused (PURPOSE_UNKNOWN). Set the same list on"
        " the hub and its sources",
    )

    @field_validator("purposes")
    @classmethod
    def _purpose_codes(cls, purposes: dict[str, str]) -> dict[str, str]:
        for code, label in purposes.items():
            if not re.fullmatch(PURPOSE_CODE_PATTERN, code):
                raise ValueError(
                    f"purpose code {code[:60]!r} must be lower-case letters, digits and hyphens"
                    " (up to 40, starting with a letter)"
                )
            if not label.strip():
                raise ValueError(f"purpose {code!r} needs a label")
        return purposes

    @property
    def production(self) -> bool:
        return self.environment is Environment.PRODUCTION


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Settings from, strongest first: ``overrides`` (CLI flags), ``LINLI_*`` env, the TOML file.

    Raises ``ConfigError`` naming the file, the setting and what is wrong.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        return _validated(cls, given, where="")
    if not config_file.is_file():
        raise ConfigError(f"{config_file}: no such config file")
    try:
        tomllib.loads(config_file.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_file}: not valid TOML: {exc}") from None

    class FromFile(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
            return (init_settings, env_settings, toml)

    settings: S = _validated(FromFile, given, where=f" (from {config_file} or the environment)")
    return settings


def _validated(cls: type[S], given: dict[str, Any], *, where: str) -> S:
    try:
        return cls(**given)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = f"{prefix}{error['loc'][0]}".upper() if error["loc"] else ""
            reason = (
                "is not a setting of this service (see `linli settings`)"
                if error["type"] == "extra_forbidden"
                else error["msg"]
            )
            problems.append(f"{name} ({variable}): {reason}")
        raise ConfigError(f"invalid settings{where}: " + "; ".join(problems)) from None


def settings_rows(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting of ``cls``."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows = []
    for name, field in cls.model_fields.items():
        if field.default_factory is not None and "secret" in name:
            default = "(generated)"
        elif field.default_factory is not None:
            made = field.default_factory()  # type: ignore[call-arg]
            default = ", ".join(map(str, made)) or "(empty)"
        elif field.default is None:
            default = "(none)"
        else:
            default = str(getattr(field.default, "value", field.default))
        rows.append((f"{prefix}{name}".upper(), default, field.description or ""))
    return rows
