"""A tiny web application: JSON greetings and a static page, with only the standard library."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def respond(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
    """(status, content type, body) for a request path: the core shared by the server and the Lambda handler."""
    if path in ("/", "/index.html"):
        return 200, "text/html; charset=utf-8", (STATIC / "index.html").read_bytes()
    if path == "/hello":
        name = query.get("name", "world")
        body = {"message": f"hello, {name}", "version": os.environ.get("APP_VERSION", "dev")}
        return 200, "application/json", json.dumps(body).encode()
    if path == "/health":
        return 200, "application/json", b'{"ok": true}'
    return 404, "application/json", b'{"error": "not found"}'
