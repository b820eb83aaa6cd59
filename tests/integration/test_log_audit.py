"""No log line carries transcript text or a credential value (SPEC sections 8 and 10).

A real server process goes through a full day in miniature: successful transcriptions (waited
for, and an asynchronous job), bad uploads, an EventBridge outage (refused connections, 500s,
throttling) that heals, and a publish that EventBridge refuses for good. Then every line the
server printed (stdout and stderr, its workers included) is searched for fragments of the
transcripts it returned and for the distinctive fake credentials it was given.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from testkit.aws import EventSink
from testkit.faultproxy import FaultProxy
from testkit.server import ServerProcess
from tests.support import bad_inputs

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TENANT = "0b6f3c1e-5d2a-4e8f-9c7b-1a2d3e4f5a6b"
# Distinctive so a hit can only be a leak. moto accepts any key pair.
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAAUDIT7QX2LOGCHECK",
    "AWS_SECRET_ACCESS_KEY": "auditSecret/9f3Kq7ZpW2mXv5LtR8nB1cYhD4sGe6Ju",
    "OPENAI_API_KEY": "sk-audit-5TqP9wXr2ZkLm8VbN3cYdH7f",
    "DEEPGRAM_API_KEY": "dg-audit-4e1b9c7a2f5d8e3b6a0c",
}
_WORD = re.compile(r"[a-z']+")


def transcript_fragments(text: str, size: int = 3) -> set[str]:
    """Every run of `size` consecutive words of the transcript (speaker labels removed) that
    holds a word of five letters or more: distinctive enough that a match in a log means the
    transcript leaked, while runs of short common words ("to the end") are left out."""
    words = _WORD.findall(re.sub(r"SPEAKER_\d+:", " ", text).lower())
    runs = (words[i : i + size] for i in range(len(words) - size + 1))
    return {" ".join(run) for run in runs if any(len(w) >= 5 for w in run)}


def _event_status(client: httpx.Client, interaction_id: str) -> str | None:
    response = client.get(f"/events/{interaction_id}", headers={"X-Tenant-ID": TENANT})
    return response.json().get("status") if response.status_code == 200 else None


def _wait_for_status(client: httpx.Client, interaction_id: str, status: str) -> None:
    for _ in range(300):
        if _event_status(client, interaction_id) == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"event {interaction_id} never became {status}")


def test_no_log_line_leaks_transcripts_or_credentials(
    tmp_path: Path, proxy: FaultProxy, sink: EventSink
) -> None:
    env = {
        **SECRETS,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": proxy.url,
        "EVENT_SOURCE": sink.source,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "BLOB_STORE": f"file://{tmp_path / 'blobs'}",
        "WORKERS": "1",
        "LOG_LEVEL": "DEBUG",  # the most talkative level: nothing may leak even there
        "RELAY_MAX_BACKOFF_SECONDS": "1",
        "MOCK_USER_ID": "audit-user",
    }
    log_path = tmp_path / "server.log"
    transcripts: list[str] = []
    with (
        ServerProcess(env, log_path) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"X-Tenant-ID": TENANT}) as client,
    ):

        def transcribe(name: str) -> str:
            data = (FIXTURES / name).read_bytes()
            response = client.post("/batch/process", files={"file": (name, data)})
            assert response.status_code == 200, response.text
            body = response.json()
            transcripts.extend([body["raw_transcript"], body["cleaned_transcript"]])
            return str(body["interaction_id"])

        # A healthy day: delivered at once.
        delivered = [transcribe("speech.wav")]
        # An asynchronous job, read back when it is done.
        data = (FIXTURES / "speech_short.flac").read_bytes()
        submitted = client.post("/batch/jobs", files={"file": ("short.flac", data)})
        assert submitted.status_code == 202, submitted.text
        job_id = str(submitted.json()["job_id"])
        for _ in range(600):
            job = client.get(f"/batch/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert job["status"] == "completed", job
        transcripts.extend([job["result"]["raw_transcript"], job["result"]["cleaned_transcript"]])
        delivered.append(job_id)
        # Bad uploads.
        bad = [
            ("notes.wav", bad_inputs.text_bytes(), 422),
            ("empty.wav", b"", 400),
            ("song.exe", bad_inputs.random_bytes(), 400),
        ]
        for name, data, status in bad:
            response = client.post("/batch/process", files={"file": (name, data)})
            assert response.status_code == status, response.text
        # An outage that heals: the event waits in the outbox and goes out afterwards.
        for mode in ("refuse", "error500", "throttle"):
            proxy.set_mode(mode)  # type: ignore[arg-type]
            delivered.append(transcribe("speech_short.wav"))
            _wait_for_status(client, delivered[-1], "pending")
        proxy.set_mode("pass")
        received = sink.collect(set(delivered), timeout=30)
        assert set(delivered) <= set(received)
        # A publish EventBridge refuses for good.
        proxy.set_mode("deny")
        denied = transcribe("speech_short.mp3")
        _wait_for_status(client, denied, "failed")
        proxy.set_mode("pass")

    log = log_path.read_text(errors="replace")
    lines = log.splitlines()
    assert len(lines) > 20, "the server logged almost nothing; the audit would prove nothing"
    for name, secret in SECRETS.items():
        assert secret not in log, f"{name} value found in the server log"
    fragments = set().union(*(transcript_fragments(t) for t in transcripts))
    assert len(fragments) >= 10, f"too little transcript text to audit: {transcripts}"
    lowered = log.lower()
    leaked = sorted(f for f in fragments if f in lowered)
    assert not leaked, f"transcript fragments in the log: {leaked[:5]}"
