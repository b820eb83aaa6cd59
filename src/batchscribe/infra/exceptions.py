"""Errors of the AWS tooling itself (AWS's own failures are `batchscribe.aws.exceptions`).

    InfraError
    ├── ProvisioningError   AWS refused a provisioning step for a reason the tool can explain
    ├── EventRejectedError  EventBridge refused the verifier's test event (per-entry ErrorCode)
    ├── ClaimCheckError     an event's `data_ref` document is missing, unreadable or not the one
    │                       the reference describes (size, SHA-256, shape)
    └── LocalStackError     `make run` could not start the emulator or the service

Messages say what to do next and never contain credential values.
"""

from __future__ import annotations


class InfraError(Exception):
    """Base class of the tooling's own errors."""


class ProvisioningError(InfraError):
    """A resource could not be created or updated (a missing bus, a queue deleted moments ago,
    a target EventBridge refused)."""


class EventRejectedError(InfraError):
    """PutEvents answered, but with an ErrorCode for the verifier's test event."""


class ClaimCheckError(InfraError):
    """The document an event's `data_ref` points at cannot be used: it does not exist, cannot be
    read, or differs from the reference (size, SHA-256) or from the expected shape."""


class LocalStackError(InfraError):
    """Local mode could not start (port busy, emulator failed, provisioning failed)."""
