"""Services called by the routes: transcription orchestration and event publishing."""
