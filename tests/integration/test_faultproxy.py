"""The fault proxy makes boto3 see exactly the failures a real EventBridge outage produces;
the chaos test and the benchmark rely on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from testkit.aws import emulator_client
from testkit.faultproxy import FaultProxy

ENTRY = {
    "Source": "com.yourapp.transcription",
    "DetailType": "BatchProcessingCompleted",
    "Detail": json.dumps({"interaction_id": "x"}),
    "EventBusName": "default",
}


def events_client(url: str, read_timeout: float = 5.0) -> Any:
    return emulator_client(
        "events",
        url,
        Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt
            connect_timeout=1,
            read_timeout=read_timeout,
        ),
    )


def test_pass_forwards_to_the_emulator(proxy: FaultProxy) -> None:
    client = events_client(proxy.url)
    try:
        answer = client.put_events(Entries=[ENTRY])
    finally:
        client.close()
    assert answer["FailedEntryCount"] == 0
    assert answer["Entries"][0]["EventId"]
    assert proxy.counts == {"pass": 1}


@pytest.mark.parametrize(
    ("mode", "code", "status"),
    [
        ("throttle", "ThrottlingException", 400),
        ("error500", "InternalException", 500),
        ("deny", "AccessDeniedException", 400),
    ],
)
def test_error_modes_reach_botocore_as_aws_error_codes(
    proxy: FaultProxy, mode: str, code: str, status: int
) -> None:
    proxy.set_mode(mode)  # type: ignore[arg-type]
    client = events_client(proxy.url)
    try:
        with pytest.raises(ClientError) as info:
            client.put_events(Entries=[ENTRY])
    finally:
        client.close()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_refuse_closes_the_port_and_pass_reopens_it(proxy: FaultProxy) -> None:
    client = events_client(proxy.url)
    try:
        client.put_events(Entries=[ENTRY])  # a kept-alive connection now exists
        proxy.set_mode("refuse")
        # The pooled connection is reset; botocore then reconnects and is refused.
        with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
            client.put_events(Entries=[ENTRY])
        with pytest.raises(EndpointConnectionError):
            client.put_events(Entries=[ENTRY])
        proxy.set_mode("pass")
        assert client.put_events(Entries=[ENTRY])["FailedEntryCount"] == 0
    finally:
        client.close()


def test_reset_breaks_connections_while_listening(proxy: FaultProxy) -> None:
    proxy.set_mode("reset")
    client = events_client(proxy.url)
    try:
        with pytest.raises(ConnectionClosedError):
            client.put_events(Entries=[ENTRY])
    finally:
        client.close()
    assert proxy.counts["reset"] == 1


def test_slow_delays_the_answer_past_a_short_read_timeout(proxy: FaultProxy) -> None:
    proxy.set_mode("slow", delay=1.5)
    client = events_client(proxy.url, read_timeout=0.3)
    try:
        with pytest.raises(ReadTimeoutError):
            client.put_events(Entries=[ENTRY])
    finally:
        client.close()
    assert proxy.counts["slow"] == 1


def test_unknown_mode_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown proxy mode"):
        proxy.set_mode("flaky")  # type: ignore[arg-type]
