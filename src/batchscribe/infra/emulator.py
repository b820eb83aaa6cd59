"""A local AWS emulator (moto's server, installed from PyPI) in a child process.

`make run` uses it so the whole event flow works on one machine with no AWS account, and the
tests use it so boto3 talks real HTTP to something that behaves like AWS. It listens on loopback
only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import TracebackType

# Credentials the emulator accepts; they are not secrets and never leave this machine.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


class EmulatorError(RuntimeError):
    """The emulator could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalAWSEmulator:
    """moto's server on 127.0.0.1, started and stopped by its owner.

    >>> with LocalAWSEmulator() as emulator:
    ...     boto3.client("sqs", endpoint_url=emulator.endpoint_url, ...)
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalAWSEmulator:
        if self._is_listening():
            raise EmulatorError(
                f"port {self.port} on {self.host} is already in use; stop what runs there or "
                "set LOCAL_AWS_PORT to another port"
            )
        env = {**os.environ, **EMULATOR_CREDENTIALS}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmulatorError(f"the AWS emulator exited with code {self._proc.returncode}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise EmulatorError(f"the AWS emulator did not answer on {self.endpoint_url} in time")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _is_listening(self) -> bool:
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex((self.host, self.port)) == 0

    def _ready(self) -> bool:
        try:
            url = f"{self.endpoint_url}/moto-api/"
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> LocalAWSEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
