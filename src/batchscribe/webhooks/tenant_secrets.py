"""Which secrets sign a tenant's webhooks, and where they are kept.

Each tenant may have its own signing secret (`batchscribe webhooks rotate-secret --tenant
UUID` makes one, prints it once, and keeps the one it replaces signing for 24 hours beside it).
A tenant without one gets `WEBHOOK_SECRET` in `none` and `gateway` modes; in `api_key` mode
tenants do not trust each other, and a shared secret would let one tenant forge webhooks to
another's receiver, so there is no fallback: a callback_url is refused until the tenant has its
own secret.

The secrets are credentials the service must read back (to sign), so they cannot be hashed
like API keys. With `WEBHOOK_ENCRYPTION_KEY` set they are stored encrypted (Fernet: AES-128-CBC
with HMAC-SHA256, from `cryptography`, under a key derived from the setting with HKDF), so a
copy of the database alone does not hand them over; without it they are stored as they are
(`plain:`), and SECURITY.md says so. Several comma-separated keys let the key itself be rotated:
the first encrypts, all decrypt, and `batchscribe webhooks reencrypt` rewrites every stored
secret under the first.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from batchscribe.auth.modes import AuthMode, resolve_mode
from batchscribe.config import Settings
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.tables import tenant_webhook_secrets as secrets_table
from batchscribe.webhooks.exceptions import (
    CallbackSecretMissing,
    DeliveryStoreError,
    InvalidSigningSecret,
    SecretUnreadable,
)
from batchscribe.webhooks.signing import (
    ROTATION_OVERLAP,
    SigningSecret,
    generate_secret,
    parse_secret,
    signing_secrets,
)

ENCRYPTED = "fernet:"
PLAIN = "plain:"
_HKDF_INFO = b"batchscribe webhook signing secrets v1"


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    """Seals signing secrets for storage and opens them again."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([_fernet(key) for key in keys]) if keys else None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        value = settings.webhook_encryption_key
        return cls(value.get_secret_value().split(",") if value is not None else ())

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, secret: SigningSecret) -> str:
        if self._fernet is None:
            return PLAIN + secret.encoded
        return ENCRYPTED + self._fernet.encrypt(secret.encoded.encode("ascii")).decode("ascii")

    def open(self, stored: str) -> SigningSecret:
        """The secret a stored value holds; `SecretUnreadable` when it cannot be decrypted."""
        if stored.startswith(PLAIN):
            return parse_secret(stored.removeprefix(PLAIN))
        if not stored.startswith(ENCRYPTED):
            raise SecretUnreadable("a stored webhook signing secret has an unknown format")
        if self._fernet is None:
            raise SecretUnreadable(
                "a tenant's webhook signing secret is stored encrypted, and "
                "WEBHOOK_ENCRYPTION_KEY is not set; set it to the key it was encrypted with"
            )
        try:
            text = self._fernet.decrypt(stored.removeprefix(ENCRYPTED).encode("ascii"))
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                "a tenant's webhook signing secret cannot be decrypted with "
                "WEBHOOK_ENCRYPTION_KEY; set it to (or add, comma-separated) the key it was "
                "encrypted with"
            ) from None
        try:
            return parse_secret(text.decode("ascii"))
        except (UnicodeDecodeError, InvalidSigningSecret):
            raise SecretUnreadable("a stored webhook signing secret is damaged") from None

    def reseal(self, stored: str) -> str:
        """The value re-encrypted under the first key (or as it is, without keys)."""
        return self.seal(self.open(stored))


@dataclass(frozen=True, slots=True)
class TenantSecretInfo:
    """What may be shown about a tenant's secrets: never the secrets."""

    tenant_id: str
    rotated_at: float
    created_at: float
    encrypted: bool
    previous_until: float | None


class TenantSecrets:
    """The `tenant_webhook_secrets` table, and the signing policy around it."""

    def __init__(self, db: Database, box: SecretBox, *, fallback: SigningSecret | None) -> None:
        self.db = db
        self.box = box
        self.fallback = fallback

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> TenantSecrets:
        """With WEBHOOK_SECRET as the fallback in `none` and `gateway` modes (none in api_key)."""
        fallback = None
        if settings.webhook_secret is not None and resolve_mode(settings) is not AuthMode.API_KEY:
            fallback = parse_secret(settings.webhook_secret.get_secret_value())
        return cls(db, SecretBox.from_settings(settings), fallback=fallback)

    def rotate(self, tenant_id: str, *, now: float | None = None) -> SigningSecret:
        """A new secret for the tenant (returned, to be shown once); the one it replaces keeps
        signing beside it for 24 hours."""
        now = time.time() if now is None else now
        secret = generate_secret()
        sealed = self.box.seal(secret)
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    sa.select(secrets_table).where(secrets_table.c.tenant_id == tenant_id)
                ).first()
                if row is None:
                    conn.execute(
                        sa.insert(secrets_table).values(
                            tenant_id=tenant_id,
                            current_secret=sealed,
                            previous_secret=None,
                            rotated_at=now,
                            created_at=now,
                        )
                    )
                else:
                    conn.execute(
                        sa.update(secrets_table)
                        .where(secrets_table.c.tenant_id == tenant_id)
                        .values(
                            current_secret=sealed,
                            previous_secret=row.current_secret,
                            rotated_at=now,
                        )
                    )
        except DatabaseError as exc:
            raise DeliveryStoreError(f"the signing secret was not stored: {exc}") from exc
        return secret

    def _row(self, tenant_id: str) -> Any:
        try:
            with self.db.read() as conn:
                return conn.execute(
                    sa.select(
                        secrets_table.c.tenant_id,
                        secrets_table.c.current_secret,
                        secrets_table.c.previous_secret,
                        secrets_table.c.rotated_at,
                        secrets_table.c.created_at,
                    ).where(secrets_table.c.tenant_id == tenant_id)
                ).first()
        except DatabaseError as exc:
            raise DeliveryStoreError(f"the signing secrets cannot be read now: {exc}") from exc

    def has_own(self, tenant_id: str) -> bool:
        return self._row(tenant_id) is not None

    def for_tenant(self, tenant_id: str, *, now: float | None = None) -> tuple[SigningSecret, ...]:
        """The secrets that sign the tenant's webhooks now: its own (with the previous one during
        the 24 hours after a rotation), else the fallback. `CallbackSecretMissing` when there
        are none; `SecretUnreadable` when the stored ones cannot be decrypted."""
        row = self._row(tenant_id)
        if row is None:
            if self.fallback is not None:
                return (self.fallback,)
            raise CallbackSecretMissing(missing_secret_message(tenant_id))
        current = self.box.open(row.current_secret)
        previous = self.box.open(row.previous_secret) if row.previous_secret else None
        moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        return signing_secrets(
            current,
            previous,
            rotated_at=datetime.fromtimestamp(row.rotated_at, UTC),
            now=moment,
        )

    def require(self, tenant_id: str) -> None:
        """`CallbackSecretMissing` unless something can sign the tenant's webhooks (checked
        when a job with a callback_url is submitted)."""
        if self.fallback is None and not self.has_own(tenant_id):
            raise CallbackSecretMissing(missing_secret_message(tenant_id))

    def list(self) -> list[TenantSecretInfo]:
        overlap = ROTATION_OVERLAP.total_seconds()
        try:
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(secrets_table).order_by(secrets_table.c.created_at)
                ).all()
        except DatabaseError as exc:
            raise DeliveryStoreError(f"the signing secrets cannot be read now: {exc}") from exc
        now = time.time()
        return [
            TenantSecretInfo(
                tenant_id=row.tenant_id,
                rotated_at=row.rotated_at,
                created_at=row.created_at,
                encrypted=row.current_secret.startswith(ENCRYPTED),
                previous_until=(
                    row.rotated_at + overlap
                    if row.previous_secret and now < row.rotated_at + overlap
                    else None
                ),
            )
            for row in rows
        ]

    def reencrypt(self) -> int:
        """Rewrite every stored secret under the first WEBHOOK_ENCRYPTION_KEY (or in the clear
        without one); the number of tenants rewritten. `SecretUnreadable` leaves all as they
        were."""
        try:
            with self.db.transaction() as conn:
                rows = conn.execute(sa.select(secrets_table)).all()
                for row in rows:
                    conn.execute(
                        sa.update(secrets_table)
                        .where(secrets_table.c.tenant_id == row.tenant_id)
                        .values(
                            current_secret=self.box.reseal(row.current_secret),
                            previous_secret=(
                                self.box.reseal(row.previous_secret)
                                if row.previous_secret
                                else None
                            ),
                        )
                    )
        except DatabaseError as exc:
            raise DeliveryStoreError(f"the signing secrets were not rewritten: {exc}") from exc
        return len(rows)

    def stored_formats(self) -> dict[str, int]:
        """How many tenants' secrets are stored encrypted and in the clear (for startup logs)."""
        counts = {"encrypted": 0, "plain": 0}
        try:
            with self.db.read() as conn:
                for (value,) in conn.execute(sa.select(secrets_table.c.current_secret)):
                    counts["encrypted" if value.startswith(ENCRYPTED) else "plain"] += 1
        except DatabaseError as exc:
            raise DeliveryStoreError(f"the signing secrets cannot be read now: {exc}") from exc
        return counts


def missing_secret_message(tenant_id: str) -> str:
    return (
        "callback_url needs a webhook signing secret for this tenant, and none is set. An "
        f"operator runs `batchscribe webhooks rotate-secret --tenant {tenant_id}`, which prints "
        "the secret your receiver verifies callbacks with (in none and gateway modes, "
        "WEBHOOK_SECRET also serves)."
    )
