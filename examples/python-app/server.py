#!/usr/bin/env python3
"""A pool app in another runtime: Python's standard library only (http.server).

It keeps the pool contract the demo app (app/server.js) keeps, which is all bluegreen asks of an
image: listen on PORT (3000); GET /healthz answers 200 while healthy; GET /version answers JSON with
the release id from RELEASE_ID; every answer carries X-App-Pool (APP_POOL) and X-Release-Id
(RELEASE_ID); on SIGTERM stop accepting, let requests in flight finish, exit 0. One log line per
request on stdout (JSON), none of it buffered.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POOLS = ("blue", "green")
# In-flight requests get this long after SIGTERM (Compose's stop_grace_period is 10 s).
DRAIN_SECONDS = 5.0


def config_from_env(env):
    """The app's settings; raises ValueError naming the variable when one is wrong."""
    pool = env.get("APP_POOL", "blue")
    if pool not in POOLS:
        raise ValueError(f'APP_POOL must be one of {"|".join(POOLS)}, got "{pool}"')
    port_text = env.get("PORT", "3000")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f'PORT must be an integer 0-65535, got "{port_text}"')
    return {
        "pool": pool,
        "release": env.get("RELEASE_ID", f"{pool}-dev"),
        "port": int(port_text),
        "host": env.get("HOST", "0.0.0.0"),
    }


def log(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class PoolServer(ThreadingHTTPServer):
    # Request threads are joined on server_close(): that is how in-flight requests finish.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 resets connections as soon as nginx opens a
    # few at once (measured: 197 of 400 concurrent connects reset); 511 as Node's default.
    request_queue_size = 511
    draining = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        # Open connections: handler -> busy (answering a request) or idle (waiting for the next one).
        self.connections = {}

    def close_idle(self):
        """Ends every keep-alive connection waiting for a request; busy ones close after their answer."""
        with self.lock:
            for handler, busy in list(self.connections.items()):
                if not busy:
                    try:
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


def make_handler(config, started_at):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1: keep-alive connections, as nginx's upstream keepalive expects.
        protocol_version = "HTTP/1.1"
        server_version = "bluegreen-python-example"
        # An idle keep-alive connection is closed after this (nginx reopens one when needed).
        timeout = 65
        # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for
        # the client's delayed ACK (about 40 ms per answer on a kept-alive connection).
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            self.mark(False)

        def finish(self):
            with self.server.lock:
                self.server.connections.pop(self, None)
            super().finish()

        def mark(self, busy):
            with self.server.lock:
                self.server.connections[self] = busy

        def parse_request(self):
            self.mark(True)
            return super().parse_request()

        def handle_one_request(self):
            super().handle_one_request()
            self.mark(False)

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-App-Pool", config["pool"])
            self.send_header("X-Release-Id", config["release"])
            if self.server.draining:
                # Tell the client this connection ends with this answer.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self.send_json(200, {"status": "ok", "pool": config["pool"]})
            elif path == "/version":
                self.send_json(
                    200,
                    {
                        "pool": config["pool"],
                        "release": config["release"],
                        "uptimeSeconds": round(time.monotonic() - started_at),
                        "python": sys.version.split()[0],
                    },
                )
            elif path == "/":
                self.send_json(200, {"pool": config["pool"], "release": config["release"], "message": "hello from python"})
            else:
                self.send_json(404, {"error": "not found", "path": path})

        do_HEAD = do_GET

        def log_request(self, code="-", size="-"):
            log(
                msg="request",
                method=self.command,
                path=self.path,
                status=int(code) if str(code).isdigit() else code,
                pool=config["pool"],
                release=config["release"],
            )

        def log_message(self, format, *args):
            # Errors of the HTTP machinery (bad request lines): one JSON line too, on stderr.
            sys.stderr.write(json.dumps({"msg": "http", "detail": format % args}) + "\n")

    return Handler


def serve(config):
    server = PoolServer((config["host"], config["port"]), make_handler(config, time.monotonic()))
    stopping = threading.Event()

    def on_term(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        server.draining = True
        # shutdown() waits for serve_forever to return: from another thread, never the signal handler's.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log(msg="listening", pool=config["pool"], release=config["release"], port=server.server_address[1])
    server.serve_forever(poll_interval=0.2)
    # No new connections from here on; idle keep-alive connections end now, requests in flight
    # finish (server_close joins their threads), all of it bounded by DRAIN_SECONDS.
    server.socket.close()
    server.close_idle()
    deadline = threading.Timer(DRAIN_SECONDS, lambda: os._exit(0))
    deadline.daemon = True
    deadline.start()
    server.server_close()
    log(msg="stopped", pool=config["pool"], release=config["release"])
    return 0


def main():
    try:
        config = config_from_env(os.environ)
    except ValueError as err:
        sys.stderr.write(f"pool app: {err}\n")
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
