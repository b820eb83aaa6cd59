"""`make run`: the service beside a local AWS emulator, so the event flow works with no account.

It starts moto's server on 127.0.0.1:`LOCAL_AWS_PORT`, provisions it with the same provisioner as
real AWS (queues, rule and target, and the blob store's bucket, `--with-bucket`), then runs
`python -m batchscribe serve` as a child process pointed at the emulator with its dummy
credentials: events go to the emulator's EventBridge, uploads and large results to
`s3://batchscribe-local/local` in the emulator's S3 (SPEC 14). Local mode always uses the
emulator: AWS credentials or profiles found in the environment are not passed to the service
(use `make serve` to talk to real AWS), and a BLOB_STORE of the environment is replaced.

The jobs API is tenant-scoped, and a request without `X-Tenant-ID` takes `MOCK_TENANT_ID`, else a
new tenant each time; so that a job submitted without the header can be read back the same way,
local mode sets `MOCK_TENANT_ID` to `LOCAL_TENANT_ID` unless the user set one.

Ctrl-C or SIGTERM stops the service first (SIGTERM, so its relay can drain the outbox) and then
the emulator.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from batchscribe.aws.exceptions import AWSError
from batchscribe.config import Settings, exit_on_config_error, get_settings
from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, EmulatorError, LocalAWSEmulator
from batchscribe.infra.exceptions import InfraError, LocalStackError
from batchscribe.infra.provision import AWSInfrastructureProvisioner, ProvisionResult
from batchscribe.logging_setup import configure_logging
from batchscribe.webhooks.signing import generate_secret

# Variables that could point the service at a real account; local mode removes them.
_REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)

#: The blob store's bucket in the emulator, and the key prefix the service uses in it.
LOCAL_BUCKET = "batchscribe-local"
LOCAL_BLOB_PREFIX = "local"
LOCAL_BLOB_STORE = f"s3://{LOCAL_BUCKET}/{LOCAL_BLOB_PREFIX}"
#: The tenant of requests without `X-Tenant-ID` in local mode (a fixed UUID v4, "10ca1" for
#: local), unless MOCK_TENANT_ID is set.
LOCAL_TENANT_ID = "10ca1000-0000-4000-8000-000000000001"
#: Local mode's webhook signing secret (created on the first run, reused after).
LOCAL_WEBHOOK_SECRET_FILE = Path("var/local-webhook-secret")


def emulator_settings(settings: Settings, endpoint_url: str) -> Settings:
    """`settings` pointed at the emulator with its dummy credentials and its bucket."""
    return settings.model_copy(
        update={
            "aws_endpoint_url": endpoint_url,
            "s3_endpoint_url": endpoint_url,
            "blob_store": LOCAL_BLOB_STORE,
            "aws_access_key_id": EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": SecretStr(EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            "aws_session_token": None,
        }
    )


def service_environment(settings: Settings, endpoint_url: str) -> dict[str, str]:
    """The service child's environment: the emulator endpoint and credentials (no real
    account), the emulator's bucket as blob store, and the local tenant unless one is set."""
    env = {k: v for k, v in os.environ.items() if k not in _REAL_AWS_VARIABLES}
    env.update(EMULATOR_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint_url
    env["AWS_REGION"] = settings.aws_region
    env["AWS_DEFAULT_REGION"] = settings.aws_region
    env["BLOB_STORE"] = LOCAL_BLOB_STORE
    env["S3_ENDPOINT_URL"] = endpoint_url
    if not settings.mock_tenant_id:  # set in the environment or .env: the service reads it
        env["MOCK_TENANT_ID"] = LOCAL_TENANT_ID
    if settings.webhook_secret is None:
        # Callbacks work out of the box: signed with a secret kept in a file (never printed),
        # and allowed to reach receivers on this machine or a private network.
        env["WEBHOOK_SECRET"] = local_webhook_secret()
        if "callback_allow_private_networks" not in settings.model_fields_set:
            env["CALLBACK_ALLOW_PRIVATE_NETWORKS"] = "true"
    return env


def local_webhook_secret(path: Path = LOCAL_WEBHOOK_SECRET_FILE) -> str:
    """Local mode's webhook signing secret: created once (mode 0600), the same on every run."""
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate_secret().encoded
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return secret


def tenant_id(settings: Settings) -> str:
    """The tenant of requests without `X-Tenant-ID` in local mode."""
    return settings.mock_tenant_id or LOCAL_TENANT_ID


def real_aws_configured(settings: Settings) -> bool:
    """Whether the environment names a real account (which local mode deliberately ignores)."""
    key = settings.aws_access_key_id
    return bool(
        (key and key != EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"])
        or any(os.environ.get(name) for name in ("AWS_PROFILE", "AWS_ROLE_ARN"))
    )


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((probe_host, port)) == 0


def start_local_aws(settings: Settings) -> tuple[LocalAWSEmulator, ProvisionResult]:
    """Start the emulator on `LOCAL_AWS_PORT` and provision it; the caller stops the emulator."""
    emulator = LocalAWSEmulator(port=settings.local_aws_port)
    # The emulator must outlive a terminal Ctrl-C until the service has drained its outbox, so it
    # starts with SIGINT ignored (the disposition is inherited across exec).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        emulator.start()
    except EmulatorError as exc:
        raise LocalStackError(f"the local AWS emulator could not start: {exc}") from exc
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        provisioner = AWSInfrastructureProvisioner(
            emulator_settings(settings, emulator.endpoint_url), bucket=LOCAL_BUCKET
        )
        result = provisioner.provision_all()
        if not result.ok:
            raise LocalStackError("provisioning the emulator failed: " + "; ".join(result.problems))
    except (AWSError, InfraError):
        emulator.stop()
        raise
    return emulator, result


def banner(settings: Settings, endpoint_url: str, result: ProvisionResult) -> str:
    """What `make run` prints: where the service is, where events go, how to watch them."""
    service = f"http://{settings.host}:{settings.port}"
    return "\n".join(
        [
            "batchscribe local mode",
            f"  service            {service}  (web page at /, API docs at /docs)",
            f"  AWS emulator       {endpoint_url}  (moto, in memory: gone when this stops)",
            f"  events go to       bus {result.bus_name!r} -> rule -> {result.queue_url}",
            f"  dead letters       {result.dlq_url}",
            f"  rule               {result.rule_arn}",
            f"  uploads, results   {LOCAL_BLOB_STORE}  (a bucket in the emulator)",
            f"  tenant             {tenant_id(settings)}  (requests without X-Tenant-ID; "
            "MOCK_TENANT_ID to change)",
            "  webhooks           signed with the secret in "
            f"{LOCAL_WEBHOOK_SECRET_FILE if settings.webhook_secret is None else 'WEBHOOK_SECRET'}"
            " (verify with it); callbacks may reach private addresses",
            "  in another terminal:",
            f"    watch events     batchscribe tail --endpoint-url {endpoint_url}",
            f"    check the flow   batchscribe verify --endpoint-url {endpoint_url}",
            "  Ctrl-C stops the service and the emulator.",
        ]
    )


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def run_service(settings: Settings, endpoint_url: str) -> int:
    """Run the service child until it exits or we are told to stop; its exit code."""
    command = [
        sys.executable, "-m", "batchscribe", "serve",
        "--host", settings.host, "--port", str(settings.port),
    ]  # fmt: skip
    # Own session: a terminal Ctrl-C reaches only us, and we send the service one SIGTERM.
    proc = subprocess.Popen(
        command, env=service_environment(settings, endpoint_url), start_new_session=True
    )
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            return proc.wait()
        except _Stop:
            print("stopping the service...", file=sys.stderr, flush=True)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=settings.shutdown_grace_seconds + 10)
            except (_Stop, subprocess.TimeoutExpired):  # a second Ctrl-C, or a hung service
                proc.kill()
                proc.wait()
            return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@exit_on_config_error
def main() -> int:
    """Entry point of `python -m batchscribe.infra.local` (what `make run` runs)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    if real_aws_configured(settings):
        print(
            "note: AWS credentials found in the environment are NOT used by make run; local mode "
            "always talks to the local emulator. Use `make serve` to publish to real AWS.",
            file=sys.stderr,
        )
    if "blob_store" in settings.model_fields_set and settings.blob_store != LOCAL_BLOB_STORE:
        print(
            f"note: BLOB_STORE={settings.blob_store} is NOT used by make run; local mode keeps "
            f"uploads and large results in {LOCAL_BLOB_STORE}, in the emulator.",
            file=sys.stderr,
        )
    if port_in_use(settings.host, settings.port):
        print(
            f"make run: port {settings.port} is already in use; stop what runs there or "
            f"run `make run PORT=<another port>`",
            file=sys.stderr,
        )
        return 1
    try:
        emulator, result = start_local_aws(settings)
    except (AWSError, InfraError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    try:
        print(banner(settings, emulator.endpoint_url, result), flush=True)
        code = run_service(settings, emulator.endpoint_url)
        if code:
            print(f"make run: the service exited with code {code}", file=sys.stderr)
        return code
    finally:
        emulator.stop()


if __name__ == "__main__":
    raise SystemExit(main())
