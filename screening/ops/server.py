"""Serving with several workers: gunicorn's arbiter with uvicorn workers, the app imported before the fork.

uvicorn's own `--workers` spawns each worker as a fresh interpreter, which imports everything again: two
workers on two cores were ready in 2.4-3.4 s, against 1.2-1.5 s for one. Here the arbiter imports the app
once (`preload_app`), freezes what it built out of the cyclic collector's reach, and forks: each worker
then only runs the app's lifespan (database, model, instruments) before it serves, and shares the parent's
pages until it writes to them. gunicorn also restarts a worker that dies, which uvicorn's supervisor
does not do on every platform.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from uvicorn_worker import UvicornWorker

from screening.ops import built_app
from screening.ops.protocol import GRACEFUL_TIMEOUT, UVICORN_OPTIONS


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn as `screening serve` runs it with one worker (`UVICORN_OPTIONS`)."""

    CONFIG_KWARGS: dict[str, Any] = UVICORN_OPTIONS

    def run(self) -> None:
        try:
            super().run()
        except SystemExit as exc:
            if exc.code != Arbiter.WORKER_BOOT_ERROR:
                raise
            # The app could not start (a model refused, a schema behind, a database out of reach), and uvicorn has
            # logged why. The worker leaves at once with the code that makes the arbiter stop the service, not
            # through the interpreter's exit: there onnxruntime's exit handlers, in a process forked after the
            # arbiter imported it, waited forever on a lock, so the worker never ended, the arbiter never learnt,
            # and the service neither served nor stopped.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(Arbiter.WORKER_BOOT_ERROR)


class _Arbiter(Arbiter):  # type: ignore[misc]
    def stop(self, graceful: bool = True) -> None:
        """gunicorn's stop, carried on to its end. Stopping because one worker failed to boot, gunicorn raised the same
        error again out of its stop when it reaped a second that had (both had met the same fault), and the arbiter
        ended with a traceback and exit code 1 instead of 3, without waiting for the other workers."""
        while True:
            try:
                super().stop(graceful)
                return
            except HaltServer:
                continue  # that worker has been reaped: the stop goes on with the others


class Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def run(self) -> None:
        """gunicorn's BaseApplication.run, with the arbiter above."""
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return built_app()  # in the arbiter, before the fork


def run(host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
    Server({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "screening.ops.server.Worker",
        "preload_app": True,
        "logconfig_dict": log_config,
        "accesslog": None,
        # uvicorn's default; gunicorn's own (2 s) is short for tablets on a custody suite's Wi-Fi.
        "keepalive": 5,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        # No runtime control socket: nothing here manages the arbiter at run time, and the image's file
        # system is read-only.
        "control_socket_disable": True,
    }).run()
