"""The `batchscribe` command: serve, and the operations tools of the other components."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from batchscribe import __version__
from batchscribe.auth import cli as auth_cli
from batchscribe.client import transcribe as transcribe_cli
from batchscribe.config import Settings, exit_on_config_error, load_settings
from batchscribe.events import cli as events_cli
from batchscribe.infra import cli as infra_cli
from batchscribe.webhooks import cli as webhooks_cli


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from batchscribe.http.app import create_app
    from batchscribe.http.protocol import GuardedH11Protocol
    from batchscribe.http.upload import prepare_upload_dir
    from batchscribe.logging_setup import configure_logging

    # The flags override HOST and PORT in the settings themselves, so the configuration the
    # app logs at startup is the one the server runs with.
    settings = load_settings(host=args.host, port=args.port, workers=args.workers or None)
    configure_logging(settings.log_level)
    problem = _storage_problem(settings)
    if problem:
        print(f"batchscribe serve: {problem}", file=sys.stderr)
        return 1
    # A server killed mid-upload left its temporary file behind: remove such files now.
    prepare_upload_dir(settings.upload_dir)
    uvicorn.run(
        create_app(settings, workers=args.workers),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # h11 with MAX_HEADER_BYTES enforced before buffering, HEADER_TIMEOUT_SECONDS, and
        # our JSON error body for requests the parser refuses (see http/protocol.py).
        http=GuardedH11Protocol.configured(settings),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # The service has no WebSocket endpoint: an upgrade request is plain HTTP.
        ws="none",
        # Lets in-flight requests finish, then the outbox drains within SHUTDOWN_GRACE_SECONDS.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
    )
    return 0


def _storage_problem(settings: Settings) -> str | None:
    """Why the database cannot be used at startup (unreachable, schema behind), in one line;
    None when it can. Checked before the server starts, so the answer is a sentence, not a
    traceback from inside the server's startup."""
    from batchscribe.db.exceptions import DatabaseError
    from batchscribe.db.setup import open_database, prepare_database

    db = open_database(settings)
    try:
        prepare_database(db, settings)
    except DatabaseError as exc:
        return f"cannot use the database at {db.describe()}: {exc}"
    finally:
        db.dispose()
    return None


def _worker(args: argparse.Namespace) -> int:
    """Run worker processes only: claim jobs from DATABASE_URL, audio from BLOB_STORE."""
    import signal
    import threading

    from batchscribe.logging_setup import configure_logging
    from batchscribe.services.runtime import ServiceRuntime

    settings = load_settings()
    configure_logging(settings.log_level)
    concurrency = args.concurrency or settings.workers
    problem = _storage_problem(settings)
    if problem:
        print(f"batchscribe worker: {problem}", file=sys.stderr)
        return 1
    runtime = ServiceRuntime(settings, workers=concurrency, with_relay=False)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        runtime.start()
    except Exception as exc:
        print(f"batchscribe worker: cannot start: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    print(f"batchscribe worker: {concurrency} worker processes running; Ctrl-C stops", flush=True)
    stop.wait()
    runtime.stop()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Apply pending schema migrations to DATABASE_URL (and import an earlier outbox file)."""
    from batchscribe.db.exceptions import DatabaseError
    from batchscribe.db.migrate import import_legacy_outbox, upgrade
    from batchscribe.db.setup import legacy_outbox_path, open_database

    settings = load_settings()
    db = open_database(settings)
    try:
        before, after = upgrade(db)
        legacy = legacy_outbox_path(settings)
        imported = import_legacy_outbox(db, legacy) if legacy is not None else 0
    except DatabaseError as exc:
        print(f"batchscribe migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    state = "already up to date" if before == after else f"migrated from {before or 'empty'}"
    print(f"{db.describe()}: {state}, now at revision {after}")
    if imported:
        print(f"imported {imported} events from the earlier outbox file {legacy}")
    return 0


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (0-64)")
    return count


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid port (1-65535)")
    return port


def _local(args: argparse.Namespace) -> int:
    # moto's server (with Flask) comes with the `local` extra, not with the service itself.
    if any(importlib.util.find_spec(name) is None for name in ("moto", "flask")):
        print(
            "batchscribe local: the local AWS emulator is not installed; "
            "install it with pip install 'batchscribe[local]'",
            file=sys.stderr,
        )
        return 2
    from batchscribe.infra.local import main as local_main

    return local_main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchscribe",
        description="Batch transcription service with durable EventBridge events.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="interface to bind (default HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="local worker processes (default WORKERS, the number of cores); 0 runs the API "
        "alone, for workers started with `batchscribe worker` elsewhere",
    )
    serve.set_defaults(func=_serve)
    worker = sub.add_parser(
        "worker",
        help="run worker processes only (any machine sharing DATABASE_URL and BLOB_STORE)",
        description=(
            "Claim jobs from the application database (DATABASE_URL), fetch their audio from "
            "the blob store (BLOB_STORE), transcribe, clean, and record results and events. "
            "SIGTERM hands running jobs back to the queue after SHUTDOWN_GRACE_SECONDS."
        ),
    )
    worker.add_argument(
        "--concurrency",
        type=_workers,
        help="worker processes on this machine (default WORKERS, the number of cores)",
    )
    worker.set_defaults(func=_worker)
    migrate = sub.add_parser(
        "migrate",
        help="apply database migrations (startup does it when AUTO_MIGRATE, the SQLite default)",
    )
    migrate.set_defaults(func=_migrate)
    local = sub.add_parser(
        "local",
        help="run the service beside a local AWS emulator (what `make run` runs)",
        description=(
            "Start a local AWS emulator on LOCAL_AWS_PORT, provision the queue, dead-letter queue "
            "and rule in it, and run the service against it (HOST, PORT). Needs the `local` "
            "extra: pip install 'batchscribe[local]'."
        ),
    )
    local.set_defaults(func=_local)
    # The operations tools of the events and AWS components register their own subcommands.
    events_cli.register(sub)
    infra_cli.register(sub)
    auth_cli.register(sub)
    transcribe_cli.register(sub)
    webhooks_cli.register(sub)
    return parser


@exit_on_config_error
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
