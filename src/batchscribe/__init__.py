"""batchscribe: batch transcription that tells the rest of the company through events."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of truth: the version in pyproject.toml, as installed.
    __version__ = version("batchscribe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
