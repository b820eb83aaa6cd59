"""`AWSInfrastructureProvisioner`: the SQS queues, the EventBridge rule and its target, and
optionally the blob store's S3 bucket.

SPEC section 6, in order: the DLQ, the main queue (redrive to the DLQ, encryption at rest, a queue
policy that lets only this rule send), the rule (matching every detail type we publish, SPEC 13),
then the queue as the rule's target; with `bucket`, the S3 bucket of SPEC 14 (`bucket.py`). Every
step first reads what exists: an existing resource is kept (and logged as a warning), settings
that differ from the contract are reported as drift and corrected only with `reconcile=True`. A
dry run does the reads and calls no create or update API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.errors import QUEUE_DELETED_RECENTLY_CODES
from batchscribe.aws.exceptions import AWSRequestError, AWSResourceNotFoundError
from batchscribe.config import Settings, get_settings
from batchscribe.infra import iam
from batchscribe.infra.bucket import BlobBucket, blob_store_for, bucket_name_problem
from batchscribe.infra.contract import (
    MAX_RECEIVE_COUNT,
    RETENTION_SECONDS,
    VISIBILITY_TIMEOUT,
    Drift,
    ResourceOutcome,
    desired_event_pattern,
    normalised_policy,
    pattern_matches,
    queue_drift,
    queue_policy,
)
from batchscribe.infra.exceptions import ProvisioningError
from batchscribe.infra.target import AWSTarget, tool_clients

__all__ = ["AWSInfrastructureProvisioner", "ProvisionResult", "ResourceOutcome"]

logger = logging.getLogger(__name__)


@dataclass
class ProvisionResult:
    """Everything a run found and did; `problems` lists what the final verification found wrong."""

    region: str
    bus_name: str
    source: str
    queue_url: str | None
    queue_arn: str
    dlq_url: str | None
    dlq_arn: str
    rule_arn: str
    resources: list[ResourceOutcome]
    problems: list[str]
    dry_run: bool
    reconcile: bool
    iam_policies: dict[str, dict[str, Any]]
    bucket: str | None = None
    blob_store: str | None = None  # the BLOB_STORE value for the service, with a bucket

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return any(r.action in ("created", "updated") for r in self.resources)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["changed"] = self.changed
        return data


class AWSInfrastructureProvisioner:
    """Creates, checks and (with `reconcile`) repairs the event-flow resources.

    Clients can be injected (tests pass emulator or Stubber clients); otherwise they are built from
    the default credential chain, and missing credentials fail here, before any API call.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        target: AWSTarget | None = None,
        sqs_client: Any = None,
        events_client: Any = None,
        s3_client: Any = None,
        bucket: str | None = None,
        reconcile: bool = False,
        dry_run: bool = False,
    ) -> None:
        settings = settings or get_settings()
        if bucket is not None and (problem := bucket_name_problem(bucket)):
            raise ProvisioningError(problem)
        self.target = target or AWSTarget.from_settings(settings)
        wanted = {"sqs": sqs_client, "events": events_client}
        if bucket is not None:
            wanted["s3"] = s3_client
        clients = tool_clients(settings, self.target, wanted)
        self.sqs, self.events = clients["sqs"], clients["events"]
        self.reconcile = reconcile
        self.dry_run = dry_run
        actions = iam.PROVISIONER_ACTIONS + (iam.PROVISIONER_S3_ACTIONS if bucket else ())
        self.caller = AWSCaller(actions, policy_hint="docs/iam/provisioner-policy.json")
        self.bucket = (
            None
            if bucket is None
            else BlobBucket(
                clients["s3"],
                bucket,
                self.target.region,
                caller=self.caller,
                reconcile=reconcile,
                dry_run=dry_run,
            )
        )
        self.blob_bucket, self.blob_prefix = blob_store_for(settings, bucket)
        self._partition = "aws"
        self._account = "ACCOUNT_ID"  # learnt from the first queue ARN we read
        self.dlq_url: str | None = None
        self.queue_url: str | None = None
        self.rule_arn: str | None = None

    # ARNs -----------------------------------------------------------------------------------
    def _learn_account(self, arn: str) -> None:
        parts = arn.split(":")
        if len(parts) >= 5 and parts[4]:
            self._partition, self._account = parts[1], parts[4]

    @property
    def dlq_arn(self) -> str:
        t = self.target
        return iam.queue_arn(self._partition, t.region, self._account, t.dlq_name)

    @property
    def queue_arn(self) -> str:
        t = self.target
        return iam.queue_arn(self._partition, t.region, self._account, t.queue_name)

    @property
    def expected_rule_arn(self) -> str:
        t = self.target
        return self.rule_arn or iam.rule_arn(
            self._partition, t.region, self._account, t.bus_name, t.rule_name
        )

    # Queues ---------------------------------------------------------------------------------
    def _call_optional(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """Like `caller.call`, but None when AWS answers that the resource does not exist."""
        try:
            return self.caller.call(client, operation, **kwargs)
        except AWSResourceNotFoundError:
            return None

    def _find_queue(self, name: str) -> str | None:
        found = self._call_optional(self.sqs, "get_queue_url", QueueName=name)
        return None if found is None else str(found["QueueUrl"])

    def _attributes(self, url: str) -> dict[str, str]:
        response = self.caller.call(
            self.sqs, "get_queue_attributes", QueueUrl=url, AttributeNames=["All"]
        )
        return dict(response.get("Attributes", {}))

    def _ensure_queue(
        self, kind: str, name: str, desired: Callable[[], dict[str, str]]
    ) -> tuple[ResourceOutcome, str | None]:
        url = self._find_queue(name)
        if url is None:
            if self.dry_run:
                logger.info("would create %s %s", kind, name)
                return ResourceOutcome(kind, name, "would-create"), None
            try:
                url = str(
                    self.caller.call(
                        self.sqs, "create_queue", QueueName=name, Attributes=desired()
                    )["QueueUrl"]
                )
            except AWSRequestError as exc:
                if exc.code in QUEUE_DELETED_RECENTLY_CODES:
                    raise ProvisioningError(
                        f"SQS refuses to recreate {name} within 60 s of deleting it; wait a "
                        "minute and run again"
                    ) from exc
                raise
            self._learn_account(self._attributes(url)["QueueArn"])
            logger.info("created %s %s", kind, name)
            return ResourceOutcome(kind, name, "created"), url
        logger.warning("%s %s already exists; keeping it", kind, name)
        actual = self._attributes(url)
        self._learn_account(actual.get("QueueArn", ""))
        wanted = desired()
        drifts = queue_drift(actual, wanted, self.dlq_arn)
        return self._settle_drift(kind, name, drifts, url, wanted), url

    def _settle_drift(
        self, kind: str, name: str, drifts: list[Drift], url: str, wanted: dict[str, str]
    ) -> ResourceOutcome:
        if not drifts:
            return ResourceOutcome(kind, name, "exists")
        for drift in drifts:
            logger.warning(
                "%s %s drifted: %s is %r, expected %r",
                kind,
                name,
                drift.setting,
                drift.actual,
                drift.expected,
            )
        if not self.reconcile:
            return ResourceOutcome(kind, name, "drift", drifts)
        if self.dry_run:
            return ResourceOutcome(kind, name, "would-update", drifts)
        fixes = {d.setting: wanted[d.setting] for d in drifts}
        self.caller.call(self.sqs, "set_queue_attributes", QueueUrl=url, Attributes=fixes)
        logger.warning("%s %s reconciled: %s", kind, name, ", ".join(sorted(fixes)))
        return ResourceOutcome(kind, name, "updated", drifts)

    def desired_dlq_attributes(self) -> dict[str, str]:
        """The DLQ keeps failed events as long as SQS allows, encrypted at rest."""
        return {"MessageRetentionPeriod": RETENTION_SECONDS, "SqsManagedSseEnabled": "true"}

    def desired_queue_attributes(self) -> dict[str, str]:
        """SPEC section 6 step 2, exactly."""
        redrive = {"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        return {
            "VisibilityTimeout": VISIBILITY_TIMEOUT,
            "MessageRetentionPeriod": RETENTION_SECONDS,
            "RedrivePolicy": json.dumps(redrive),
            "SqsManagedSseEnabled": "true",
            "Policy": json.dumps(queue_policy(self.queue_arn, self.expected_rule_arn)),
        }

    def create_dlq(self) -> ResourceOutcome:
        """Step 1: the dead-letter queue, created first so the main queue can point at it."""
        outcome, self.dlq_url = self._ensure_queue(
            "dlq", self.target.dlq_name, self.desired_dlq_attributes
        )
        return outcome

    def create_main_queue(self) -> ResourceOutcome:
        """Step 2: the main queue with redrive, encryption and the EventBridge-only policy."""
        outcome, self.queue_url = self._ensure_queue(
            "queue", self.target.queue_name, self.desired_queue_attributes
        )
        return outcome

    # Rule and target ------------------------------------------------------------------------
    def _describe_rule(self) -> dict[str, Any] | None:
        return self._call_optional(
            self.events,
            "describe_rule",
            Name=self.target.rule_name,
            EventBusName=self.target.bus_name,
        )

    def _put_rule(self) -> str:
        try:
            response = self.caller.call(
                self.events,
                "put_rule",
                Name=self.target.rule_name,
                EventBusName=self.target.bus_name,
                EventPattern=json.dumps(desired_event_pattern(self.target.source)),
                State="ENABLED",
                Description="batchscribe: BatchProcessingCompleted and BatchProcessingFailed "
                "events to the transcripts queue",
            )
        except AWSResourceNotFoundError as exc:  # the rule's bus
            raise ProvisioningError(
                f"event bus {self.target.bus_name!r} does not exist; create it or set "
                "EVENTBRIDGE_BUS_NAME=default"
            ) from exc
        return str(response["RuleArn"])

    def rule_drift(self, rule: dict[str, Any]) -> list[Drift]:
        """Pattern and state of an existing rule against the contract."""
        expected = desired_event_pattern(self.target.source)
        drifts = []
        if not pattern_matches(rule.get("EventPattern"), self.target.source):
            drifts.append(Drift("EventPattern", rule.get("EventPattern"), json.dumps(expected)))
        if rule.get("State") != "ENABLED":
            drifts.append(Drift("State", rule.get("State"), "ENABLED"))
        return drifts

    def create_eventbridge_rule(self) -> ResourceOutcome:
        """Step 3: the rule matching our source and both detail types, ENABLED."""
        name = self.target.rule_name
        rule = self._describe_rule()
        if rule is None:
            if self.dry_run:
                return ResourceOutcome("rule", name, "would-create")
            self.rule_arn = self._put_rule()
            logger.info("created rule %s", name)
            return ResourceOutcome("rule", name, "created")
        logger.warning("rule %s already exists; keeping it", name)
        self.rule_arn = str(rule["Arn"])
        drifts = self.rule_drift(rule)
        for drift in drifts:
            logger.warning("rule %s drifted: %s is %r", name, drift.setting, drift.actual)
        if not drifts:
            return ResourceOutcome("rule", name, "exists")
        if not self.reconcile:
            return ResourceOutcome("rule", name, "drift", drifts)
        if self.dry_run:
            return ResourceOutcome("rule", name, "would-update", drifts)
        self.rule_arn = self._put_rule()
        logger.warning("rule %s reconciled", name)
        return ResourceOutcome("rule", name, "updated", drifts)

    def _targets(self) -> list[dict[str, Any]]:
        response = self._call_optional(
            self.events,
            "list_targets_by_rule",
            Rule=self.target.rule_name,
            EventBusName=self.target.bus_name,
        )
        return [] if response is None else list(response.get("Targets", []))

    @staticmethod
    def target_drift(target: dict[str, Any]) -> list[Drift]:
        """A queue target must deliver the plain event: no role, no input rewriting."""
        extras = ("RoleArn", "Input", "InputPath", "InputTransformer")
        return [Drift(k, json.dumps(target[k]), "absent") for k in extras if k in target]

    def add_queue_target(self) -> ResourceOutcome:
        """Step 4: the queue ARN as the rule's target, without a RoleArn (the policy allows it)."""
        name = f"{self.target.rule_name} -> {self.target.queue_name}"
        ours = [t for t in self._targets() if t.get("Arn") == self.queue_arn]
        drifts = [d for t in ours for d in self.target_drift(t)]
        if ours and not drifts:
            logger.warning("target %s already exists; keeping it", name)
            return ResourceOutcome("target", name, "exists")
        if ours and not self.reconcile:
            return ResourceOutcome("target", name, "drift", drifts)
        if self.dry_run:
            return ResourceOutcome("target", name, "would-update" if ours else "would-create")
        target_id = str(ours[0]["Id"]) if ours else self.target.queue_name[:64]
        response = self.caller.call(
            self.events,
            "put_targets",
            Rule=self.target.rule_name,
            EventBusName=self.target.bus_name,
            Targets=[{"Id": target_id, "Arn": self.queue_arn}],
        )
        if response.get("FailedEntryCount"):
            raise ProvisioningError(f"PutTargets failed: {response.get('FailedEntries')}")
        logger.info("target %s %s", name, "reconciled" if ours else "added")
        return ResourceOutcome("target", name, "updated" if ours else "created", drifts)

    # The whole run --------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Read every resource back; the problems found (empty when all matches SPEC 6)."""
        problems: list[str] = []
        dlq_url = self._find_queue(self.target.dlq_name)
        queue_url = self._find_queue(self.target.queue_name)
        rule = self._describe_rule()
        if dlq_url is None:
            problems.append(f"dlq {self.target.dlq_name} is missing")
        else:
            actual = self._attributes(dlq_url)
            self._learn_account(actual.get("QueueArn", ""))
            for d in queue_drift(actual, self.desired_dlq_attributes(), self.dlq_arn):
                problems.append(f"dlq {d.setting} is {d.actual!r}, expected {d.expected!r}")
        if rule is None:
            problems.append(f"rule {self.target.rule_name} is missing")
        else:
            self.rule_arn = str(rule["Arn"])
            for d in self.rule_drift(rule):
                problems.append(f"rule {d.setting} is {d.actual!r}, expected {d.expected!r}")
        if queue_url is None:
            problems.append(f"queue {self.target.queue_name} is missing")
        else:
            actual = self._attributes(queue_url)
            for d in queue_drift(actual, self.desired_queue_attributes(), self.dlq_arn):
                problems.append(f"queue {d.setting} is {d.actual!r}, expected {d.expected!r}")
        if rule is not None:
            ours = [t for t in self._targets() if t.get("Arn") == self.queue_arn]
            if not ours:
                problems.append("the rule has no target pointing at the queue")
            for d in (d for t in ours for d in self.target_drift(t)):
                problems.append(f"target {d.setting} is set, expected {d.expected}")
        if self.bucket is not None:
            problems += self.bucket.problems()
        return problems

    def create_bucket(self) -> ResourceOutcome | None:
        """Step 5 (with a bucket): the blob store's bucket, encrypted and never public."""
        return None if self.bucket is None else self.bucket.ensure()

    def provision_all(self) -> ProvisionResult:
        """Steps 1-4 (and 5 with a bucket), then verification. Raises AWSError or
        ProvisioningError when AWS refuses a step."""
        outcomes = [self.create_dlq(), self.create_main_queue(), self.create_eventbridge_rule()]
        if self.rule_arn and self.queue_url and not self.dry_run:
            # The queue policy names the rule ARN; if AWS's ARN differs from our guess, fix it.
            current = self._attributes(self.queue_url).get("Policy")
            wanted = json.dumps(queue_policy(self.queue_arn, self.rule_arn))
            created = outcomes[1].action == "created"
            if created and normalised_policy(current) != normalised_policy(wanted):
                self.caller.call(
                    self.sqs,
                    "set_queue_attributes",
                    QueueUrl=self.queue_url,
                    Attributes={"Policy": wanted},
                )
        outcomes.append(self.add_queue_target())
        bucket = self.create_bucket()
        if bucket is not None:
            outcomes.append(bucket)
        problems = [] if self.dry_run else self.verify()
        t = self.target
        return ProvisionResult(
            region=t.region,
            bus_name=t.bus_name,
            source=t.source,
            queue_url=self.queue_url,
            queue_arn=self.queue_arn,
            dlq_url=self.dlq_url,
            dlq_arn=self.dlq_arn,
            rule_arn=self.expected_rule_arn,
            resources=outcomes,
            problems=problems,
            dry_run=self.dry_run,
            reconcile=self.reconcile,
            iam_policies=iam.all_policies(
                partition=self._partition,
                region=t.region,
                account=self._account,
                bus_name=t.bus_name,
                queue_name=t.queue_name,
                dlq_name=t.dlq_name,
                rule_name=t.rule_name,
                bucket=self.blob_bucket,
                blob_prefix=self.blob_prefix,
            ),
            bucket=None if self.bucket is None else self.bucket.name,
            blob_store=None
            if self.bucket is None
            else f"s3://{self.bucket.name}/{self.blob_prefix}".rstrip("/"),
        )
