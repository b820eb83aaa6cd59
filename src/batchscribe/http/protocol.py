"""uvicorn's HTTP protocol with a JSON answer for requests its parser rejects.

A request with a bare CR or LF, a NUL or DEL byte, or a folded line inside a header never reaches
the app: uvicorn's parser refuses it and answers a plain-text 400. Our contract says every error
is `{"error": {"code", "message"}}`, so this subclass answers those in the same JSON shape.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MALFORMED_REQUEST_BODY = json.dumps(
    {
        "error": {
            "code": "malformed_request",
            "message": (
                "The request is not valid HTTP: a header contains a forbidden character "
                "(CR, LF, NUL or another control byte) or is malformed. Fix the request and "
                "send it again."
            ),
        }
    },
    separators=(",", ":"),
).encode("ascii")


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose parser-level 400 carries our JSON error body."""

    def send_400_response(self, msg: str) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(MALFORMED_REQUEST_BODY)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                MALFORMED_REQUEST_BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
