"""Cold-start benchmark (docs/benchmarks.md): the time from process start to
the function's first request for work (`GET /2018-06-01/runtime/invocation/next`)
from a local Lambda runtime API, for each binary given, repeated.

Usage: python scripts/cold_start.py [--runs 20] NAME=PATH [NAME=PATH ...]
Each binary is started with AWS_LAMBDA_RUNTIME_API pointing at a local server
and the environment of this process (so `dunning-run` gets its configuration
and the emulator's address). Prints one JSON object: per binary, the median,
minimum and maximum milliseconds and the binary's size, raw and zipped.
"""

import argparse
import http.server
import io
import json
import os
import statistics
import subprocess
import threading
import time
import zipfile


class Runtime(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.first_request = threading.Event()
        self.at = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next") and not self.server.first_request.is_set():
            self.server.at = time.perf_counter()
            self.server.first_request.set()
        # Never hand out work: the benchmark stops at the first request.
        time.sleep(5)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def once(path):
    server = Runtime()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="bench",
               AWS_LAMBDA_LOG_GROUP_NAME="bench")
    start = time.perf_counter()
    proc = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = server.first_request.wait(30)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    server.server_close()
    if not ok:
        raise SystemExit(f"{path} never asked for work: {err.decode()[-500:]}")
    return (server.at - start) * 1000


def zipped(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    result = {}
    for spec in args.binaries:
        name, path = spec.split("=", 1)
        once(path)  # warm the page cache: we measure start-up, not disk
        times = [once(path) for _ in range(args.runs)]
        result[name] = {
            "median_ms": round(statistics.median(times), 2),
            "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2),
            "runs": args.runs,
            "binary_mib": round(os.path.getsize(path) / 2**20, 2),
            "zipped_mib": round(zipped(path) / 2**20, 2),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
