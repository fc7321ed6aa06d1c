"""The ops host's textfile metrics (the backup catalogue, ``backup/catalogue.py``) served at /metrics,
as the node exporter's textfile collector serves them; `netops monitor up` runs this on the lab's ops
host, which has no node exporter. Usage: python -m monitoring.textfile --listen ADDR:PORT --dir DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jinbao_netops import metricshttp


def body(directory: Path) -> bytes:
    """Every ``*.prom`` file in the directory (each written atomically by its producer), concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.prom")))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m monitoring.textfile", description=__doc__)
    ap.add_argument("--listen", required=True, metavar="ADDR:PORT")
    ap.add_argument("--dir", required=True, type=Path)
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    metricshttp.server(host, int(port), lambda: body(args.dir)).serve_forever()


if __name__ == "__main__":
    main()
