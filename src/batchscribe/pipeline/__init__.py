"""The audio pipeline: decode, transcribe into speaker turns, clean. No FastAPI in here."""
