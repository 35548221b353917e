"""moto server for this project's tests and demo, with two changes: requests
are handled one at a time, and a failed TransactWriteItems is rolled back item
by item instead of from a copy of the whole table.

moto's DynamoDB evaluates a ConditionExpression and applies the write in two
steps without a lock, so under the stock threaded `moto_server` two
concurrent conditional writes can both succeed, which DynamoDB itself never
allows (each write, and each TransactWriteItems, is atomic). Serialising
requests restores that guarantee, so the exactly-once tests exercise our
protocol rather than an emulator race. 
moto's TransactWriteItems deep-copies every table it touches before it
starts, to roll back on failure: each transaction costs time proportional to
the table, so a run slows down as its ledger grows (0.14 s per message at a
few hundred invoices, and timeouts beyond). With requests serialised, a copy
of the items the transaction touches is enough to undo it.

moto's SES v2 SendEmail keeps only the HTML part and drops the message
tags, the headers and the Reply-To address. The tests turn what was sent
into the SES events the configuration set would publish (tags included)
and check the List-Unsubscribe headers, so each sent message also keeps
`text`, `tags` (name -> [value]), `headers` ([{name, value}]), `reply_to`
and `configuration_set`, as they were in the request, in
`/moto-api/data.json`.

Everything else is moto's own server.

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
import copy

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a
    Table is not copied (the rollback below replaces the whole-table copy)."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items_item_rollback(self, transact_items):
    saved = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        if "Key" in op:
            key = op["Key"]
        elif "Item" in op:
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            continue
        try:
            current = self.get_item(op["TableName"], key)
        except Exception:  # noqa: BLE001 - an invalid key fails in moto's own code below
            continue
        saved.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, attrs in reversed(saved):
            if attrs is None:
                try:
                    self.delete_item(table_name, key)
                except Exception:  # noqa: BLE001 - nothing was written there
                    pass
            else:
                self.put_item(table_name, attrs)
        raise


dynamodb_models.copy = _NoTableCopy()
dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items_item_rollback


import json

import moto.ses.models as ses_models
from moto.sesv2.responses import SESV2Response

_send_email_v2 = SESV2Response.send_email


def _send_email_v2_keeping_envelope(self):
    answer = _send_email_v2(self)
    params = json.loads(self.body)
    message_id = json.loads(answer)["MessageId"]
    simple = params.get("Content", {}).get("Simple", {})
    # Requests are serialised (below): the message is the last one tracked.
    for message in reversed(ses_models.Message.instances_tracked):
        if getattr(message, "id", None) == message_id:
            message.text = simple.get("Body", {}).get("Text", {}).get("Data")
            message.tags = {}
            for tag in params.get("EmailTags", []):
                message.tags.setdefault(tag["Name"], []).append(tag["Value"])
            message.headers = simple.get("Headers", [])
            message.reply_to = params.get("ReplyToAddresses", [])
            message.configuration_set = params.get("ConfigurationSetName")
            break
    return answer


SESV2Response.send_email = _send_email_v2_keeping_envelope


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
