"""The contract the provisioner creates and checks against: the rule's pattern (both detail
types, in any order) and the blob-store bucket's settings."""

from __future__ import annotations

import json

import pytest

from batchscribe.infra.contract import (
    bucket_drift,
    create_bucket_arguments,
    desired_event_pattern,
    pattern_matches,
)

SOURCE = "com.yourapp.transcription"
BOTH = ["BatchProcessingCompleted", "BatchProcessingFailed"]


def test_the_rule_matches_both_detail_types_of_our_source() -> None:
    assert desired_event_pattern(SOURCE) == {"source": [SOURCE], "detail-type": BOTH}


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": [SOURCE], "detail-type": BOTH},
        {"detail-type": BOTH[::-1], "source": [SOURCE]},  # key and value order do not matter
    ],
)
def test_patterns_equal_up_to_order_match(pattern: dict[str, list[str]]) -> None:
    assert pattern_matches(json.dumps(pattern, indent=2), SOURCE)


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": [SOURCE], "detail-type": ["BatchProcessingCompleted"]},  # the old pattern
        {"source": [SOURCE], "detail-type": [*BOTH, "Other"]},
        {"source": ["com.other"], "detail-type": BOTH},
        {"source": [SOURCE], "detail-type": BOTH, "detail": {"status": ["failed"]}},
        {"source": [SOURCE]},
    ],
)
def test_any_other_pattern_is_drift(pattern: dict[str, object]) -> None:
    assert not pattern_matches(json.dumps(pattern), SOURCE)


@pytest.mark.parametrize("text", [None, "", "not json", "[]"])
def test_an_unreadable_pattern_is_drift(text: str | None) -> None:
    assert not pattern_matches(text, SOURCE)


def test_a_bucket_with_nothing_configured_drifts_on_both_settings() -> None:
    drifts = {d.setting: d for d in bucket_drift(None, None)}
    assert set(drifts) == {"DefaultEncryption", "PublicAccessBlock"}
    assert drifts["DefaultEncryption"].expected == "AES256"


def test_a_kms_encrypted_fully_blocked_bucket_is_kept_as_it_is() -> None:
    """A KMS key someone chose is stronger than the contract, not drift to undo."""
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    block = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert bucket_drift(encryption, block) == []


def test_one_public_access_switch_off_is_drift_naming_it() -> None:
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
             "RestrictPublicBuckets": True}  # fmt: skip
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    (drift,) = bucket_drift(encryption, block)
    assert drift.setting == "PublicAccessBlock"
    assert json.loads(drift.actual or "") == {"BlockPublicPolicy": False}


def test_create_bucket_names_the_region_outside_us_east_1_only() -> None:
    assert create_bucket_arguments("b-1", "us-east-1") == {"Bucket": "b-1"}
    assert create_bucket_arguments("b-1", "eu-central-1") == {
        "Bucket": "b-1",
        "CreateBucketConfiguration": {"LocationConstraint": "eu-central-1"},
    }
