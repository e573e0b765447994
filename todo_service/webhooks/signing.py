"""Signing secrets: made, kept encrypted at rest, and used to sign per Standard Webhooks.

A secret is ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks convention); the HMAC key
is those bytes. It must be usable to sign, so it cannot be a one-way hash: it is stored encrypted
with AES-256-GCM under a key derived (HKDF-SHA256) from ``SECRET_KEY``, the webhook's id as
associated data (a ciphertext copied onto another webhook does not decrypt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ("PREFIX", "SecretBox", "SecretUnreadable", "new_secret", "sign")

PREFIX = "whsec_"
_NONCE = 12


class SecretUnreadable(Exception):
    """The stored secret does not decrypt: SECRET_KEY changed since it was made."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64 of 32 random bytes>``."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class SecretBox:
    """Encrypts and decrypts signing secrets with a key derived from the service's SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"todo-service webhook secrets v1").derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, webhook_id: UUID, secret: str) -> bytes:
        """Nonce + ciphertext of ``secret``, bound to ``webhook_id``."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), webhook_id.bytes)

    def open(self, webhook_id: UUID, sealed: bytes) -> str:
        """The secret sealed for ``webhook_id``.

        Raises:
            SecretUnreadable: it was sealed under another SECRET_KEY (or for another webhook).
        """
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], webhook_id.bytes).decode()
        except InvalidTag as exc:
            raise SecretUnreadable from exc
