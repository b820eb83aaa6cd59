"""API keys: their format, their hash, and `KeyStore`, their table in the application database.

A key is `bsk_` followed by 32 random bytes from `secrets` in URL-safe base64 (43 characters):

    bsk_Xq3v9KpL...   (47 characters)
        ^^^^^^^^ the display prefix: what listings, logs and `keys revoke` use

The key is shown once, when it is created. The database keeps only its SHA-256 (the lookup
key: 256 random bits need no salt or slow hash, nothing can be guessed from the digest) and
the 8 characters after `bsk_`, which name the key to people and say nothing useful about the
rest. Each key belongs to one tenant (UUID v4), with an optional name and default user.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from batchscribe.auth.exceptions import InvalidKeyInputError, KeyNotFoundError
from batchscribe.db.engine import Database
from batchscribe.db.tables import api_keys

KEY_PREFIX = "bsk_"
KEY_RANDOM_BYTES = 32
DISPLAY_CHARS = 8
#: `bsk_` + 43 URL-safe base64 characters (32 bytes without padding).
KEY_PATTERN = re.compile(r"^bsk_[A-Za-z0-9_-]{43}$")
MAX_TEXT_CHARS = 256
_CREATE_ATTEMPTS = 5


def generate_key() -> str:
    """A new random key: `bsk_` + 32 bytes of `secrets.token_bytes`, URL-safe base64."""
    raw = secrets.token_bytes(KEY_RANDOM_BYTES)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def looks_like_key(value: str) -> bool:
    """Whether `value` has the form of a key (checked before any database lookup)."""
    return KEY_PATTERN.fullmatch(value) is not None


def hash_key(key: str) -> str:
    """The SHA-256 of a key, hex: what the database stores and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The 8 characters after `bsk_`: the part of a key that may be shown and logged."""
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + DISPLAY_CHARS]


def normalise_prefix(value: str) -> str:
    """`bsk_Xq3v9KpL`, `Xq3v9KpL` or a whole key -> `Xq3v9KpL` (what `keys revoke` accepts)."""
    value = value.strip()
    value = value.removeprefix(KEY_PREFIX)
    return value[:DISPLAY_CHARS]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: everything but the key itself."""

    key_hash: str
    prefix: str
    tenant_id: str
    name: str | None
    default_user: str | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def display(self) -> str:
        """`bsk_` + the display prefix, as people see the key in listings and logs."""
        return KEY_PREFIX + self.prefix

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: Any) -> ApiKey:
        return cls(
            key_hash=row.key_hash,
            prefix=row.prefix,
            tenant_id=row.tenant_id,
            name=row.name,
            default_user=row.default_user,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


def _uuid4(value: str) -> str:
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 4:
        raise InvalidKeyInputError(
            "The tenant must be a UUID v4, e.g. 6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03 "
            "(python -c 'import uuid; print(uuid.uuid4())' makes one)."
        )
    return str(parsed)


def _text(what: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > MAX_TEXT_CHARS or not value.isprintable():
        raise InvalidKeyInputError(
            f"The {what} must be at most {MAX_TEXT_CHARS} printable characters."
        )
    return value


class KeyStore:
    """The `api_keys` table: create, find by hash, list, revoke, record last use."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, tenant_id: str, *, name: str | None = None, default_user: str | None = None
    ) -> tuple[ApiKey, str]:
        """A new key for `tenant_id`: (its stored record, the key itself, to show once).

        Raises `InvalidKeyInputError` for a tenant that is not a UUID v4 or an unprintable or
        over-long name or user.
        """
        tenant_id = _uuid4(tenant_id)
        name, default_user = _text("name", name), _text("default user", default_user)
        for _ in range(_CREATE_ATTEMPTS):
            key = generate_key()
            record = ApiKey(
                key_hash=hash_key(key),
                prefix=display_prefix(key),
                tenant_id=tenant_id,
                name=name,
                default_user=default_user,
                created_at=time.time(),
                last_used_at=None,
                revoked_at=None,
            )
            try:
                with self.db.transaction() as conn:
                    conn.execute(
                        sa.insert(api_keys).values(
                            key_hash=record.key_hash,
                            prefix=record.prefix,
                            tenant_id=record.tenant_id,
                            name=record.name,
                            default_user=record.default_user,
                            created_at=record.created_at,
                        )
                    )
            except IntegrityError:
                continue  # two keys with the same 48-bit display prefix: draw another
            return record, key
        raise RuntimeError("could not draw a key with an unused display prefix")

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this SHA-256, revoked or not; None when there is none."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return ApiKey.from_row(row) if row is not None else None

    def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        """Every key (or a tenant's), oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.prefix)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        with self.db.read() as conn:
            return [ApiKey.from_row(row) for row in conn.execute(query)]

    def revoke(self, prefix: str) -> tuple[ApiKey, bool]:
        """Revoke the key with this display prefix (`bsk_` optional): (the key, whether this
        call revoked it; False when it was already revoked). Raises `KeyNotFoundError`."""
        prefix = normalise_prefix(prefix)
        with self.db.transaction() as conn:
            changed = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            row = conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix)).first()
        if row is None:
            raise KeyNotFoundError(
                f"No key has the prefix {KEY_PREFIX}{prefix}; `batchscribe keys list` shows them."
            )
        return ApiKey.from_row(row), bool(changed)

    def record_use(self, used: Mapping[str, float]) -> None:
        """Set `last_used_at` of each key hash to its time, in one transaction; a later time
        already stored (another instance flushed after us) is kept."""
        if not used:
            return
        statement = (
            sa.update(api_keys)
            .where(
                api_keys.c.key_hash == sa.bindparam("hash"),
                sa.or_(
                    api_keys.c.last_used_at.is_(None),
                    api_keys.c.last_used_at < sa.bindparam("used_at"),
                ),
            )
            .values(last_used_at=sa.bindparam("used_at"))
        )
        rows = [{"hash": key_hash, "used_at": at} for key_hash, at in sorted(used.items())]
        with self.db.transaction() as conn:
            conn.execute(statement, rows)
