"""batchscribe: batch transcription that tells the rest of the company through events."""

__version__ = "0.1.0"
