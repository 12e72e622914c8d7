"""Everything one instance of the function keeps between requests, wired from its settings."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref

from calls_batch_get.auth import TokenVerifier
from calls_batch_get.handler import Handler
from calls_batch_get.http import Cors
from calls_batch_get.lazy import Lazy
from calls_batch_get.log import LOGGER_NAME, configure
from calls_batch_get.settings import Settings
from calls_batch_get.store import Store


def create_store(settings: Settings) -> Store:
    if settings.database_url is not None:
        # Imported here so that a PostgREST-only deployment never loads the database driver.
        from calls_batch_get.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, settings.db_timeout_seconds)

    from calls_batch_get.store.supabase import create_supabase_store

    assert settings.anon_key is not None, "load_settings demands a key without a DB URL"
    return create_supabase_store(
        settings.supabase_url, settings.anon_key, settings.db_timeout_seconds
    )


def create_handler(settings: Settings) -> Handler:
    handler = Handler(
        cors=Cors(settings.cors_allow_origins),
        verifier=Lazy(lambda: TokenVerifier(settings)),
        store=Lazy(lambda: create_store(settings)),
        logger=configure(settings.log_level),
        project=settings.google_cloud_project,
    )
    # Functions Framework has no shutdown hook. On SIGTERM its gunicorn worker stops taking
    # requests, lets the running ones finish and exits normally, which runs atexit functions
    # while the pool's threads can still be stopped; left to the interpreter's finalisation
    # instead, the pool's clean-up waits 5 s per thread in vain on Python 3.13. Weakly held, so
    # that an instance made in a test is not kept alive by it.
    atexit.register(_close, weakref.ref(handler))
    return handler


def _close(handler: weakref.ref[Handler]) -> None:
    live = handler()
    if live is not None:
        live.close()


def warm_each_worker(handler: Handler) -> None:
    """Warms every process forked from this one, on a thread of its own as soon as it starts.

    The Functions Framework imports the function in gunicorn's arbiter, which then forks the
    worker that serves: connections and threads must be the worker's own, so the warming starts
    there, while gunicorn opens the worker to requests (it delays nothing). A first request that
    arrives meanwhile waits for what is under way instead of starting it again.
    """
    os.register_at_fork(after_in_child=lambda: _start_warming(handler))


def _start_warming(handler: Handler) -> None:
    threading.Thread(target=_warm, args=(handler,), name="warm-up", daemon=True).start()


def _warm(handler: Handler) -> None:
    try:
        handler.warm()
    except Exception as error:  # a failed warm-up is a slower first request, nothing more
        logging.getLogger(LOGGER_NAME).warning(
            "warm-up failed", extra={"fields": {"cause": type(error).__name__}}
        )
