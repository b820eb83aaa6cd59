"""An answer sent before the request body was read closes the connection, so a client cannot
keep it busy with a body nobody reads; answers after the whole body keep it alive."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from batchscribe.http.app import UnreadBodyGuard


def _client() -> TestClient:
    app = FastAPI()
    app.add_middleware(UnreadBodyGuard)

    @app.post("/refuse")
    def refuse() -> JSONResponse:
        return JSONResponse({"error": {"code": "overloaded", "message": "Busy."}}, 503)

    @app.post("/read")
    async def read(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/refuse-closing")
    def refuse_closing() -> JSONResponse:
        return JSONResponse({}, 413, headers={"Connection": "close"})

    return TestClient(app)


def test_an_answer_before_the_body_is_read_closes_the_connection() -> None:
    response = _client().post("/refuse", content=b"x" * 10_000)
    assert response.status_code == 503
    assert response.headers["connection"] == "close"


def test_an_answer_after_the_whole_body_keeps_the_connection() -> None:
    response = _client().post("/read", content=b"x" * 10_000)
    assert response.json() == {"bytes": 10_000}
    assert "connection" not in response.headers


def test_a_request_without_a_body_keeps_the_connection() -> None:
    response = _client().post("/refuse")
    assert "connection" not in response.headers


def test_an_answer_that_already_closes_says_so_once() -> None:
    response = _client().post("/refuse-closing", content=b"x" * 100)
    assert response.headers.get_list("connection") == ["close"]
