"""Secrets the hub keeps at rest, sealed with a key from its environment.

The hub must read back two kinds of secret: the private halves of its token
signing keys and the webhook signing secrets (it signs with them). Each is
stored as ``enc:v1:`` and a Fernet token (AES-128-CBC with HMAC-SHA256, from
``cryptography``) made with the first key of ``LINLI_SECRETS_KEY``; any key of
the list opens a value, so a new key can be put in front of the old one, the
rows re-encrypted (``linli hub secrets reencrypt``) and the old key dropped.

A value without the prefix is plain text, as every row was before sealing: it
is read as it is, so a hub that gets a key keeps working and seals its rows
when ``reencrypt`` runs. Without a key (development only; production refuses to
start) new secrets are stored in plain text.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from schema.runtime.settings import ConfigError

__all__ = [
    "NEW_KEY_COMMAND",
    "SEALED_PREFIX",
    "SECRETS_KEY_VARIABLE",
    "SealedSecretError",
    "Sealer",
    "new_key",
    "parse_keys",
]

SEALED_PREFIX: Final = "enc:v1:"
SECRETS_KEY_VARIABLE: Final = "LINLI_SECRETS_KEY"
NEW_KEY_COMMAND: Final = "linli hub secrets new-key"


class SealedSecretError(ConfigError):
    """A sealed secret the configured keys cannot open: the hub cannot start with them."""


def new_key() -> str:
    """A new random key for ``LINLI_SECRETS_KEY``."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(value: str) -> list[Fernet]:
    """The keys of a ``LINLI_SECRETS_KEY`` value (comma-separated, newest first).

    Raises ``ValueError`` naming the position of a bad key, never its value.
    """
    keys = [part for part in re.split(r"[\s,]+", value) if part]
    if not keys:
        raise ValueError(f"{SECRETS_KEY_VARIABLE} is empty; make a key with `{NEW_KEY_COMMAND}`")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ValueError(
                f"key {position} of {SECRETS_KEY_VARIABLE} is not a Fernet key (32 url-safe"
                f" base64-encoded bytes); make one with `{NEW_KEY_COMMAND}`"
            ) from None
    return fernets


class Sealer:
    """Seals secrets with the first key and opens them with any; plain text without keys."""

    def __init__(self, keys: str | None) -> None:
        self._fernet = MultiFernet(parse_keys(keys)) if keys is not None else None

    @property
    def encrypts(self) -> bool:
        """Whether new secrets are sealed (a key is set)."""
        return self._fernet is not None

    @staticmethod
    def is_sealed(stored: object) -> bool:
        """Whether a stored value is sealed (rather than plain text from before)."""
        return isinstance(stored, str) and stored.startswith(SEALED_PREFIX)

    def seal(self, plain: str) -> str:
        """The value to store for ``plain`` (itself when there is no key)."""
        if self._fernet is None:
            return plain
        return SEALED_PREFIX + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def unseal(self, stored: str, *, what: str) -> str:
        """The secret in a stored value, sealed or plain; ``what`` names it in errors."""
        if not self.is_sealed(stored):
            return stored
        if self._fernet is None:
            raise SealedSecretError(
                f"{what} is encrypted but {SECRETS_KEY_VARIABLE} is not set; set the key"
                " the hub was running with"
            )
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX)).decode("utf-8")
        except InvalidToken:
            raise SealedSecretError(
                f"{what} cannot be decrypted with {SECRETS_KEY_VARIABLE}: wrong key? Set the"
                " key it was encrypted with (comma-separated after a new one while rotating)"
            ) from None

    def reseal(self, stored: str, *, what: str) -> str:
        """``stored`` sealed afresh with the first key (plain text is sealed)."""
        return self.seal(self.unseal(stored, what=what))

    def seal_json(self, value: dict[str, Any]) -> dict[str, Any] | str:
        """A JSON column's value for ``value``: sealed text, or the object itself without keys."""
        if self._fernet is None:
            return value
        return self.seal(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def reseal_json(self, stored: dict[str, Any] | str, *, what: str) -> dict[str, Any] | str:
        """A JSON column's value sealed afresh with the first key."""
        return self.seal_json(self.unseal_json(stored, what=what))

    def unseal_json(self, stored: dict[str, Any] | str, *, what: str) -> dict[str, Any]:
        """The object in a JSON column's value, sealed or plain."""
        if isinstance(stored, dict):
            return stored
        if not self.is_sealed(stored):
            raise SealedSecretError(f"{what} is neither an object nor an encrypted value")
        value: dict[str, Any] = json.loads(self.unseal(stored, what=what))
        return value
