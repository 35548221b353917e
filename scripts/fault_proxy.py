"""Fault-injecting HTTP proxy between the AWS SDK and a local moto server.

Point the SDK at this proxy (AWS_ENDPOINT_URL=http://127.0.0.1:<port>) and it
forwards every request to the moto server at --upstream. With probability
--rate it instead injects a fault, before forwarding (moto never sees a
faulted request), for the services in --services:

  throttle  the service's own throttling error (DynamoDB ThrottlingException,
            SES v2 429 TooManyRequestsException, SNS Throttling, ...)
  5xx       a 500 or 503 in the service's error shape
  timeout   read the request, answer nothing for --hold seconds, then close
  reset     read the request, then abort the connection with a TCP RST
  denied    the service's permission error (SES v2 403 AccessDeniedException,
            SNS AuthorizationError, DynamoDB AccessDeniedException): a
            systemic failure, as a wrong IAM grant gives. Never drawn by
            default: ask for it with --kinds or /_faults/config.

Independent of --rate, some recipients always fail permanently ("permanent"):
SES v2 SendEmail to an address whose local part starts with `bounce` gets
MessageRejected; SNS Publish to a phone number ending in 0000 (opted out) gets
OptedOut, as SNS answers a number that replied STOP.

Usage:
  python scripts/fault_proxy.py --upstream http://127.0.0.1:5000 [--port 0]
      [--rate 0.2] [--seed 1] [--services dynamodb,ses,sns] [--hold 1.5]
      [--kinds throttle,5xx,timeout,reset] [--verbose]

Prints exactly one line, `listening on <port>`, to stdout once ready.
Control endpoints (never faulted, nor are /moto-api/ paths):
  GET  /_faults/stats   {"requests": {svc: n}, "faults": {svc: {kind: n}},
                         "permanent": {svc: n}, "rate": r}
  POST /_faults/config  {"rate": 0.0, "services": [...], "kinds": [...],
                         "hold": 1.5} (all optional) -> the new config
Standard library only.
"""

import argparse
import http.client
import http.server
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse

KINDS = ("throttle", "5xx", "timeout", "reset")  # the default mix
ALL_KINDS = KINDS + ("denied",)
# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones we recompute.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "proxy-connection", "content-length",
       "host", "expect"}
CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
DDB = "com.amazonaws.dynamodb.v20120810#"
SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"


class State:
    """Settings and counters, shared by all handler threads under one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.rate, self.hold = args.rate, args.hold
        self.services = set(filter(None, args.services.split(",")))
        self.kinds = [k for k in args.kinds.split(",") if k]
        self.requests, self.faults, self.permanent = {}, {}, {}

    def config(self):
        return {"rate": self.rate, "services": sorted(self.services),
                "kinds": self.kinds, "hold": self.hold}

    def stats(self):
        with self.lock:
            return {"requests": dict(self.requests),
                    "faults": {s: dict(k) for s, k in self.faults.items()},
                    "permanent": dict(self.permanent), "rate": self.rate}

    def count(self, table, service):
        with self.lock:
            table[service] = table.get(service, 0) + 1

    def draw(self, service):
        """Decide (and count) a fault: None, or (kind, status for 5xx, hold)."""
        with self.lock:
            if service not in self.services or not self.kinds or self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(self.kinds)
            status = self.rng.choice((500, 503))
            per = self.faults.setdefault(service, {})
            per[kind] = per.get(kind, 0) + 1
            return kind, status, self.hold

    def update(self, body):
        """Apply a POST /_faults/config body; raises ValueError when invalid."""
        new = json.loads(body or b"{}")
        if not isinstance(new, dict):
            raise ValueError("expected a JSON object")
        as_list = lambda v: v.split(",") if isinstance(v, str) else list(v)  # noqa: E731
        with self.lock:
            rate = float(new.get("rate", self.rate))
            kinds = [k for k in as_list(new.get("kinds", self.kinds)) if k]
            if not 0.0 <= rate <= 1.0 or not set(kinds) <= set(ALL_KINDS):
                raise ValueError(f"rate must be in [0, 1] and kinds a subset of {ALL_KINDS}")
            self.rate, self.kinds = rate, kinds
            self.services = set(filter(None, as_list(new.get("services", self.services))))
            self.hold = float(new.get("hold", self.hold))
            return self.config()


def xml_error(kind, code, message):
    return (f'<ErrorResponse xmlns="{SNS_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>injected-1</RequestId>"
            "</ErrorResponse>").encode()


def error_response(service, kind, status):
    """(status, headers, body) of an injected throttle, 5xx or denial for `service`."""
    rest = {"Content-Type": "application/json"}
    if kind == "denied":
        message = f"User is not authorized to perform {service} action (injected)"
        if service == "sns":
            return 403, {"Content-Type": "text/xml"}, xml_error(
                "Sender", "AuthorizationError", message)
        if service == "dynamodb":
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
                {"__type": DDB + "AccessDeniedException", "message": message})
        return 403, {**rest, "x-amzn-ErrorType": "AccessDeniedException"}, json.dumps(
            {"message": message})
    if kind == "throttle":
        if service == "dynamodb":
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
                {"__type": DDB + "ThrottlingException", "message": "Rate exceeded (injected)"})
        if service == "ses":
            return 429, {**rest, "x-amzn-ErrorType": "TooManyRequestsException"}, json.dumps(
                {"message": "Too many requests (injected)"})
        if service == "sns":
            return 400, {"Content-Type": "text/xml"}, xml_error(
                "Sender", "Throttling", "Rate exceeded (injected)")
        return 400, {**rest, "x-amzn-ErrorType": "ThrottlingException"}, json.dumps(
            {"__type": "ThrottlingException", "message": "Rate exceeded (injected)"})
    # 5xx: codes chosen from those every AWS SDK (and shared/src/aws/errors.rs)
    # treats as transient.
    unavailable = status == 503
    message = ("Service unavailable" if unavailable else "Internal error") + " (injected)"
    if service == "dynamodb":
        code = "ServiceUnavailable" if unavailable else "InternalServerError"
        return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
            {"__type": DDB + code, "message": message})
    if service == "sns":
        code = "ServiceUnavailable" if unavailable else "InternalError"
        return status, {"Content-Type": "text/xml"}, xml_error("Receiver", code, message)
    code = "ServiceUnavailableException" if unavailable else "InternalFailure"
    return status, {**rest, "x-amzn-ErrorType": code}, json.dumps(
        {"__type": code, "message": message})


def permanent_error(method, path, body):
    """(status, headers, body) when the request targets a rejected recipient."""
    if method != "POST":
        return None
    if path.split("?")[0].rstrip("/") == "/v2/email/outbound-emails":
        try:
            to = (json.loads(body).get("Destination") or {}).get("ToAddresses") or []
        except (ValueError, AttributeError):
            return None
        if any(str(a).rsplit("@", 1)[0].lower().startswith("bounce") for a in to):
            return 400, {"Content-Type": "application/json", "x-amzn-ErrorType": "MessageRejected"}, \
                json.dumps({"message": "Email address rejected (injected)"})
        return None
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if form.get("Action") == ["Publish"] and any(p.endswith("0000") for p in form.get("PhoneNumber", [])):
        return 400, {"Content-Type": "text/xml"}, xml_error(
            "Sender", "OptedOut", "Phone number is opted out (injected)")
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: hyper reuses connections
    state: State
    upstream: urllib.parse.SplitResult
    verbose = False

    def log_message(self, fmt, *args):  # silence the per-request access log
        if self.verbose:
            sys.stderr.write("fault_proxy: " + (fmt % args) + "\n")

    def read_body(self):
        """The request body's exact bytes, de-chunked if sent chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            while self.rfile.readline(65537).strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length)

    def reply(self, status, headers, body, length=None):
        """Send a whole response, always with a Content-Length (HEAD: no body)."""
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in headers.items() if isinstance(headers, dict) else headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)) if length is None else length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self.reply(400, {"Content-Type": "text/plain", "Connection": "close"}, "bad request body")
        path = self.path
        if path.startswith("/_faults/"):
            return self.control(path, body)
        match = CREDENTIAL.search(self.headers.get("Authorization", ""))
        service = match.group(1) if match else "moto-api" if path.startswith("/moto-api/") else "unknown"
        self.state.count(self.state.requests, service)
        if not path.startswith("/moto-api/"):
            rejected = permanent_error(self.command, path, body)
            if rejected:
                self.state.count(self.state.permanent, service)
                self.log_message("permanent %s %s", service, path)
                return self.reply(*rejected)
            fault = self.state.draw(service)
            if fault:
                kind, status, hold = fault
                self.log_message("inject %s %s %s", kind, service, path)
                if kind in ("throttle", "5xx", "denied"):
                    return self.reply(*error_response(service, kind, status))
                self.close_connection = True  # no response on this connection
                if kind == "timeout":
                    time.sleep(hold)  # then handle() returns and the socket closes (FIN)
                else:  # reset: linger 0 makes close() send RST; detach so nothing else writes
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    socket.socket(fileno=self.connection.detach()).close()
                return None
        self.forward(body)

    def forward(self, body):
        up = self.upstream
        cls = http.client.HTTPSConnection if up.scheme == "https" else http.client.HTTPConnection
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = up.netloc
        headers["Content-Length"] = str(len(body))
        conn = cls(up.hostname, up.port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()  # http.client de-chunks upstream responses
            # send_response() adds its own Server and Date headers.
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP | {"server", "date"}]
        except (OSError, http.client.HTTPException) as err:
            return self.reply(502, {"Content-Type": "text/plain"}, f"upstream error: {err}")
        finally:
            conn.close()
        # A HEAD response has no body but announces upstream's length.
        head = resp.getheader("Content-Length", "0") if self.command == "HEAD" else None
        self.reply(resp.status, out, data, head)

    def control(self, path, body):
        """GET /_faults/stats and POST /_faults/config."""
        route = (self.command, path.split("?")[0].rstrip("/"))
        status, out = 404, {"error": "unknown control path"}
        if route == ("GET", "/_faults/stats"):
            status, out = 200, self.state.stats()
        elif route == ("POST", "/_faults/config"):
            try:
                status, out = 200, self.state.update(body)
            except (ValueError, TypeError) as err:
                status, out = 400, {"error": str(err)}
        self.reply(status, {"Content-Type": "application/json"}, json.dumps(out))

    def safe_handle(self):
        try:
            self.handle_any()
        except OSError:  # the client went away (reset, broken pipe): nothing to report
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = safe_handle


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # quiet unless --verbose
        if Handler.verbose:
            super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="moto URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = free)")
    p.add_argument("--rate", type=float, default=0.2, help="fault probability per request")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--services", default="dynamodb,ses,sns", help="SigV4 service names to fault")
    p.add_argument("--hold", type=float, default=1.5, help="seconds a timeout fault holds")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--verbose", action="store_true", help="log requests and faults to stderr")
    args = p.parse_args()
    if not 0.0 <= args.rate <= 1.0 or not set(filter(None, args.kinds.split(","))) <= set(ALL_KINDS):
        p.error(f"--rate must be in [0, 1] and --kinds a subset of {','.join(ALL_KINDS)}")
    Handler.state = State(args)
    Handler.upstream = urllib.parse.urlsplit(args.upstream)
    Handler.verbose = args.verbose
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
