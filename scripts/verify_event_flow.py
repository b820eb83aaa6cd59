#!/usr/bin/env python3
"""Send one test BatchProcessingCompleted event and check it arrives in the SQS queue.

Exit codes: 0 ok, 1 not received in time, 2 credentials, 3 queue not found, 4 structure invalid.
Same as `batchscribe verify`. Run `--help` for the flags.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run straight from a checkout: the package lives in ../src.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from batchscribe.infra.cli import verify_main
from batchscribe.infra.verify import EventFlowVerifier

__all__ = ["EventFlowVerifier", "verify_main"]

if __name__ == "__main__":
    raise SystemExit(verify_main())
