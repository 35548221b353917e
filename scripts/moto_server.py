"""moto server for this project's tests and demo, with one change: requests
are handled one at a time.

moto's DynamoDB evaluates a ConditionExpression and applies the write in two
steps without a lock, so under the stock threaded `moto_server` two
concurrent conditional writes can both succeed, which DynamoDB itself never
allows (each write, and each TransactWriteItems, is atomic). Serialising
requests restores that guarantee, so the exactly-once tests exercise our
protocol rather than an emulator race. Everything else is moto's own server.

Usage: python scripts/moto_server.py [-H 127.0.0.1] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class OneAtATime:
    """WSGI middleware: the whole request, body included, under one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
