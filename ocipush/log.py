"""The library's loggers, all under "ocipush": silent unless the application configures logging (a NullHandler
sits on "ocipush"), and URL redaction, so that no presigned query string or user:password reaches a log."""

from __future__ import annotations

import logging
import re

logging.getLogger("ocipush").addHandler(logging.NullHandler())

# A URL: scheme, user:password@ (dropped), host and path (kept), query string or fragment (presigned S3 and
# CloudFront URLs carry signatures there: replaced by "?…").
_URL = re.compile(r"([a-z][a-z0-9+.-]*://)(?:[^/@\s\"'<>]*@)?([^\s?#\"'<>]*)([?#][^\s\"'<>]*)?", re.I)


def get_logger(name: str) -> logging.Logger:
    """The logger of module `name` (pass `__name__`)."""
    return logging.getLogger(name)


def redact(text: str) -> str:
    """`text` with every URL cut to scheme, host and path."""
    return _URL.sub(lambda m: m.group(1) + m.group(2) + ("?…" if m.group(3) else ""), text)
