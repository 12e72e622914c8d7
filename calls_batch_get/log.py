"""One structured line per request, in the JSON that Cloud Logging reads from stdout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

LOGGER_NAME = "calls_batch_get"


class _CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


def configure(level: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_CloudLoggingFormatter())
        logger.addHandler(handler)
    # Our lines go to stdout once, not again through whatever the root logger does.
    logger.propagate = False
    return logger


def severity(status: int) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO
