"""The seed plan's utility module, kept importable under its original name."""
