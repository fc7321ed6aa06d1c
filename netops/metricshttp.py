"""A Prometheus scrape endpoint: GET /metrics answers what ``body()`` returns now; anything else is 404.
Used by the processes the suite runs for Prometheus to scrape (the operations service, the ops host's
textfile metrics)."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Callable


def server(host: str, port: int, body: Callable[[], bytes]) -> http.server.ThreadingHTTPServer:
    """A server (not yet serving) for ``host:port``; OSError when it cannot listen there."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            data = body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def serve_in_background(srv: http.server.ThreadingHTTPServer) -> http.server.ThreadingHTTPServer:
    threading.Thread(target=srv.serve_forever, daemon=True, name="metrics").start()
    return srv
