"""The AWS tools retry through real HTTP: the fault proxy in front of the emulator plays an AWS
that throttles, fails with 500 or refuses connections. The tools' clients use botocore's
`standard` retry mode with 4 attempts per call (3 retries), so a short fault is ridden out and a
lasting one ends in a clear "unavailable" error after the fourth attempt. The event publisher, by
contrast, makes exactly one attempt per call: its relay owns retrying."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.events.exceptions import PublishError, PublishRejectedError, PublishTransientError
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.schema import DETAIL_TYPE, BatchProcessingCompletedEvent, EventData
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.tail import QueueTail
from batchscribe.infra.target import AWSTarget, tool_clients
from batchscribe.infra.verify import EventFlowVerifier
from testkit.aws import reset_emulator
from testkit.faultproxy import FaultProxy, Mode
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    QUEUE,
    attributes,
    clients,
    restore_cli_logging,
    run_cli,
)


@pytest.fixture
def aws(emulator_env: LocalAWSEmulator) -> tuple[Any, Any]:
    """(sqs, events) straight to the emulator, which starts empty."""
    reset_emulator(emulator_env.endpoint_url)
    return clients(emulator_env)


@pytest.fixture
def provisioned(aws: tuple[Any, Any]) -> tuple[Any, Any]:
    sqs, events = aws
    AWSInfrastructureProvisioner(sqs_client=sqs, events_client=events).provision_all()
    return aws


def through_proxy(proxy: FaultProxy) -> tuple[Settings, AWSTarget, dict[str, Any]]:
    """Settings, target and clients exactly as the tools build them, aimed at the proxy."""
    settings = Settings()
    target = AWSTarget.from_settings(settings, endpoint_url=proxy.url)
    return settings, target, tool_clients(settings, target, {"sqs": None, "events": None})


def fail_then_pass(proxy: FaultProxy, mode: Mode, failures: int, tools: Iterable[Any]) -> list[int]:
    """Put the proxy in `mode` for the first `failures` requests these clients send, then let
    everything pass. Returns a one-item list counting the requests sent."""
    sent = [0]

    def before_send(**_: Any) -> None:
        sent[0] += 1
        if sent[0] > failures:
            proxy.set_mode("pass")

    for client in tools:
        client.meta.events.register("before-send", before_send)
    proxy.set_mode(mode)
    return sent


def test_provision_rides_out_throttling(aws: tuple[Any, Any], proxy: FaultProxy) -> None:
    settings, target, tools = through_proxy(proxy)
    fail_then_pass(proxy, "throttle", 2, tools.values())

    result = AWSInfrastructureProvisioner(
        settings, target=target, sqs_client=tools["sqs"], events_client=tools["events"]
    ).provision_all()

    assert result.ok, result.problems
    assert proxy.counts["throttle"] == 2  # two throttled attempts, then the retry went through
    sqs, _ = aws
    assert attributes(sqs, QUEUE)["VisibilityTimeout"] == "30"


def test_verify_rides_out_server_errors(provisioned: tuple[Any, Any], proxy: FaultProxy) -> None:
    settings, target, tools = through_proxy(proxy)
    fail_then_pass(proxy, "error500", 3, tools.values())

    result = EventFlowVerifier(
        settings,
        target=target,
        sqs_client=tools["sqs"],
        events_client=tools["events"],
        timeout=5.0,
        poll_interval=0.2,
    ).run()

    assert result.exit_code == 0, result.message
    assert proxy.counts["error500"] == 3


def test_tail_rides_out_refused_connections(
    provisioned: tuple[Any, Any], proxy: FaultProxy
) -> None:
    _, events = provisioned
    event = BatchProcessingCompletedEvent(
        interaction_id="0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d",
        tenant_id="6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03",
        user_id="u-1",
        data=EventData(raw_transcript="SPEAKER_0: hi", cleaned_transcript="Hi."),
    )
    events.put_events(
        Entries=[{"Source": "com.yourapp.transcription", "DetailType": DETAIL_TYPE,
                  "Detail": event.detail_json(), "EventBusName": "default"}]
    )  # fmt: skip
    settings, target, tools = through_proxy(proxy)
    sent = fail_then_pass(proxy, "refuse", 2, [tools["sqs"]])
    out = io.StringIO()

    stats = QueueTail(
        settings, target=target, sqs_client=tools["sqs"], once=True, wait_seconds=0, out=out
    ).run()

    assert stats.valid == 1
    assert f"interaction_id={event.interaction_id}" in out.getvalue()
    assert sent[0] > 2  # the refused attempts were made, and retried


def test_provision_gives_up_after_4_attempts_with_an_unavailable_error(
    aws: tuple[Any, Any], proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy.set_mode("error500")
    assert run_cli("provision", "--endpoint-url", proxy.url) == 1
    err = capsys.readouterr().err
    assert "AWS is unavailable" in err
    assert "sqs:GetQueueUrl kept failing with InternalException after 4 attempts" in err
    assert proxy.counts["error500"] == 4  # the first call, tried 4 times, and nothing more


def test_verify_gives_up_on_an_unreachable_endpoint_naming_it(
    aws: tuple[Any, Any], proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy.set_mode("refuse")
    assert run_cli("verify", "--endpoint-url", proxy.url, "--timeout", "1") == 1
    err = capsys.readouterr().err
    assert f"could not reach AWS at {proxy.url}" in err
    assert "after 4 attempts" in err


def test_tail_gives_up_on_lasting_server_errors(
    provisioned: tuple[Any, Any], proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy.set_mode("error500")
    assert run_cli("tail", "--endpoint-url", proxy.url, "--once") == 1
    assert "AWS is unavailable" in capsys.readouterr().err
    assert proxy.counts["error500"] == 4


@pytest.mark.parametrize(
    ("mode", "error", "code"),
    [
        ("throttle", PublishTransientError, "ThrottlingException"),
        ("error500", PublishTransientError, "InternalException"),
        ("deny", PublishRejectedError, "AccessDeniedException"),
    ],
)
def test_the_publisher_makes_one_attempt_and_leaves_retrying_to_the_relay(
    aws_emulator: LocalAWSEmulator,
    proxy: FaultProxy,
    mode: Mode,
    error: type[PublishError],
    code: str,
) -> None:
    settings = Settings(
        aws_endpoint_url=proxy.url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    publisher = AWSEventPublisher(settings=settings)
    proxy.set_mode(mode)
    try:
        with pytest.raises(error) as caught:
            publisher.put_entries([{"Source": "s", "DetailType": "d", "Detail": "{}"}])
    finally:
        publisher.client.close()
    assert caught.value.code == code
    assert proxy.counts[mode] == 1
