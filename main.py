"""Entry point for the Functions Framework and Cloud Functions: `calls_batch_get`."""

from __future__ import annotations

import os
import sys

import flask
import functions_framework

from calls_batch_get.instance import create_handler, warm_each_worker
from calls_batch_get.settings import SettingsError, load_settings

try:
    _settings = load_settings(os.environ)
except SettingsError as error:
    # One clear line at start-up instead of a failure on the first request.
    sys.exit(f"calls-batch-get: configuration error: {error}")

_handle = create_handler(_settings)
warm_each_worker(_handle)


@functions_framework.http
def calls_batch_get(request: flask.Request) -> flask.Response:
    return _handle(request)
