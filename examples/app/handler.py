"""AWS Lambda entry point (API Gateway / function URL events) around `app.respond`."""

from __future__ import annotations

import base64
from typing import Any

from app import respond


def handle(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    path = event.get("rawPath") or event.get("path") or "/"
    query = event.get("queryStringParameters") or {}
    status, content_type, body = respond(path, query)
    text = content_type.startswith(("text/", "application/json"))
    return {
        "statusCode": status,
        "headers": {"content-type": content_type},
        "body": body.decode() if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text,
    }
