"""`netops <noun> <verb>`: each capability package registers its noun; this core parses, dispatches
and turns errors into exit codes (0 ok, 1 findings, 2 bad input, 3 partial)."""
from __future__ import annotations

import argparse
import importlib
import sys

from .output import BAD_INPUT, Out, UsageError

# capability modules, each with register(subparsers, common) adding one noun
COMMANDS = ["inventory.commands", "lab.commands", "topology.commands", "cycle", "backup.commands",
            "topology.provision.commands", "security.commands", "collectors.commands", "monitoring.commands"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints usage too)
        self.exit(BAD_INPUT, f"netops: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("-i", "--inventory", metavar="PATH",
                        help="inventory directory or file (default: $NETOPS_INVENTORY, else the embedded default)")
    parser = _Parser(prog="netops", description="金保工程 network operations suite: inventory, lab twin and more.")
    nouns = parser.add_subparsers(dest="noun", metavar="NOUN", parser_class=_Parser)
    nouns.required = True
    for mod in COMMANDS:
        importlib.import_module(f"jinbao_netops.{mod}").register(nouns, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jinbao_netops.inventory import InventoryError

    args = build_parser().parse_args(argv)
    out = Out(json_mode=getattr(args, "json", False))
    try:
        return int(args.func(args, out) or 0)
    except InventoryError as e:
        if out.json_mode:
            out.json({"ok": False, "problems": e.problems})
        else:
            for line in e.problems:
                print(line, file=sys.stderr)
        return BAD_INPUT
    except UsageError as e:
        print(f"netops: {e}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("netops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
