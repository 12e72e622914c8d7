"""One structured line per request, in the JSON that Cloud Logging reads from stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import warnings
from typing import Any, TextIO

LOGGER_NAME = "calls_batch_get"


class _CloudLoggingHandler(logging.Handler):
    """Writes each record as one JSON line to whatever sys.stdout is at the time.

    ``redact`` is for other libraries' records (psycopg, the pool, warnings): their arguments
    carry database error text, hosts and ports, so only the logger's name and the message's
    template are written, never the values filled into it.
    """

    def __init__(self, *, redact: bool = False) -> None:
        super().__init__()
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {"severity": record.levelname, "message": _message(record, self)}
        if self.redact:
            entry["logger"] = record.name
            if record.exc_info and record.exc_info[0] is not None:
                entry["cause"] = record.exc_info[0].__name__
        else:
            entry.update(getattr(record, "fields", {}))
        # A log line must never fail the request it describes. Nor is it handed to
        # handleError, which would print the record's message and arguments (the values
        # redaction keeps out) to stderr.
        with contextlib.suppress(Exception):
            sys.stdout.write(json.dumps(entry, default=str) + "\n")
            sys.stdout.flush()


def _message(record: logging.LogRecord, handler: _CloudLoggingHandler) -> str:
    if not handler.redact:
        return record.getMessage()
    # A template with arguments is the library's fixed text; one without may be anything.
    return str(record.msg) if record.args else "(message withheld)"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Python's own rendering is two lines of text on stderr; the warning's text may hold data,
    # its class and where it was raised do not.
    logging.getLogger(LOGGER_NAME).warning(
        "Python warning",
        extra={"fields": {"cause": category.__name__,
                          "where": f"{os.path.basename(filename)}:{lineno}"}},
    )


def configure(level: str) -> logging.Logger:
    # The lines hold none of what the logging module looks up for every record by default (the
    # caller's file and line, found by walking the stack; thread, process and multiprocessing
    # names): off, as the logging HOWTO's "Optimization" section describes, a third of a log
    # line's CPU.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.handlers:
        logger.addHandler(_CloudLoggingHandler())
    # Our lines go to stdout once, not again through the root logger's handler below.
    logger.propagate = False
    # Every other library's warnings too are one JSON line each, redacted, instead of Python's
    # last-resort handler writing their text (and a database's host) to stderr.
    root = logging.getLogger()
    if not any(isinstance(h, _CloudLoggingHandler) for h in root.handlers):
        root.addHandler(_CloudLoggingHandler(redact=True))
    warnings.showwarning = _show_warning
    # An exception escaping a thread (the pool's, a key-set fetch) would print its traceback.
    threading.excepthook = _thread_exception
    return logger


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    logging.getLogger(LOGGER_NAME).error(
        "uncaught exception in a thread",
        extra={"fields": {"cause": args.exc_type.__name__}},
    )


def severity(status: int) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO
