"""The ops host's textfile metrics (the backup catalogue, ``backup/catalogue.py``) served at /metrics,
as the node exporter's textfile collector serves them; `netops monitor up` runs this on the lab's ops
host, which has no node exporter. Usage: python -m monitoring.textfile --listen ADDR:PORT --dir DIR
"""
from __future__ import annotations

import argparse
import http.server
from pathlib import Path


def body(directory: Path) -> bytes:
    """Every ``*.prom`` file in the directory (each written atomically by its producer), concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.prom")))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m monitoring.textfile", description=__doc__)
    ap.add_argument("--listen", required=True, metavar="ADDR:PORT")
    ap.add_argument("--dir", required=True, type=Path)
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            data = body(args.dir)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
