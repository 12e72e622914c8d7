"""One structured line per request, in the JSON that Cloud Logging reads from stdout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

LOGGER_NAME = "calls_batch_get"


class _CloudLoggingHandler(logging.Handler):
    """Writes each record as one JSON line to whatever sys.stdout is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        try:
            sys.stdout.write(json.dumps(entry, default=str) + "\n")
            sys.stdout.flush()
        except Exception:  # a log line must never fail the request it describes
            self.handleError(record)


def configure(level: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.handlers:
        logger.addHandler(_CloudLoggingHandler())
    # Our lines go to stdout once, not again through whatever the root logger does.
    logger.propagate = False
    return logger


def severity(status: int) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO
