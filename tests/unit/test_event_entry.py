"""The AWS entry-size rule decides whether an event is sent or recorded as too_large."""

from __future__ import annotations

from batchscribe.events.entry import entry_size


def test_counts_utf8_bytes_of_source_detail_type_and_detail() -> None:
    entry = {"Source": "src", "DetailType": "dt", "Detail": '{"t":"é€"}', "EventBusName": "x" * 50}
    # é is 2 bytes, € is 3; the bus name does not count.
    assert entry_size(entry) == 3 + 2 + len('{"t":""}') + 2 + 3


def test_resources_count_and_time_adds_fourteen_bytes() -> None:
    base = {"Source": "s", "DetailType": "d", "Detail": "{}"}
    with_extras = {**base, "Resources": ["arn:a", "ü"], "Time": "2026-01-01T00:00:00Z"}
    assert entry_size(with_extras) == entry_size(base) + len("arn:a") + 2 + 14
