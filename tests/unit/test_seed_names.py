"""The user's plan names modules, classes and functions; each must exist under that name (as the
real home or a documented re-export), and be the very object the product uses."""

from __future__ import annotations

import importlib

import pytest

from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.schema import BatchProcessingCompletedEvent, EventData
from batchscribe.http.identity import get_request_context
from batchscribe.http.routes.batch import process_batch_audio
from batchscribe.identity import RequestContext
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.verify import EventFlowVerifier

SEED_NAMES = [
    ("batchscribe.services.aws_event_publisher", "AWSEventPublisher", AWSEventPublisher),
    (
        "batchscribe.models.batch_event",
        "BatchProcessingCompletedEvent",
        BatchProcessingCompletedEvent,
    ),
    ("batchscribe.models.batch_event", "EventData", EventData),
    ("batchscribe.models.request_context", "RequestContext", RequestContext),
    ("batchscribe.utils.context_utils", "get_request_context", get_request_context),
    ("batchscribe.routers.batch", "process_batch_audio", process_batch_audio),
]


@pytest.mark.parametrize(("module", "name", "home"), SEED_NAMES)
def test_seed_module_names_are_the_real_objects(module: str, name: str, home: object) -> None:
    assert getattr(importlib.import_module(module), name) is home


def test_publisher_keeps_the_seed_method() -> None:
    assert callable(AWSEventPublisher.publish_batch_completed_event)


def test_tooling_classes_keep_their_seed_names() -> None:
    assert AWSInfrastructureProvisioner.__name__ == "AWSInfrastructureProvisioner"
    assert EventFlowVerifier.__name__ == "EventFlowVerifier"
