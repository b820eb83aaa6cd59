#!/usr/bin/env python3
"""Create the AWS resources batchscribe publishes to: SQS DLQ and queue, EventBridge rule, target;
with `--with-bucket NAME`, also the S3 bucket of the blob store (BLOB_STORE=s3://NAME/PREFIX).

Idempotent; safe to run again. Same as `batchscribe provision`. Run `--help` for the flags.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run straight from a checkout: the package lives in ../src.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from batchscribe.infra.cli import provision_main
from batchscribe.infra.provision import AWSInfrastructureProvisioner

__all__ = ["AWSInfrastructureProvisioner", "provision_main"]

if __name__ == "__main__":
    raise SystemExit(provision_main())
