"""`netops <noun> <verb>`: each capability package registers its noun; this core parses, dispatches
and maps every failure to its exit status once (the contract: ``errors``)."""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

from .errors import EXIT_CODES_HELP, FAILED, INTERRUPTED, NetopsError, UsageError
from .output import Out

# capability modules (under jinbao_netops), each with register(subparsers, common) adding one noun
COMMANDS = ["inventory.commands", "lab.commands", "topology.commands", "cycle", "backup.commands",
            "topology.provision.commands", "topology.provision.harden", "topology.provision.drift_commands",
            "topology.zone_commands", "security.commands", "security.logs", "collectors.commands", "monitoring.commands",
            "serve", "backup.dr_commands"]


def noun_verbs(nouns, common, noun: str, help: str, *per_verb):
    """Register the noun ``noun``; returns ``verb(name, func, help)``, which adds one of its verbs (with the
    global options, and each of ``per_verb`` applied to it: options every verb of the noun takes)."""
    verbs = nouns.add_parser(noun, help=help).add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name: str, func, help: str) -> argparse.ArgumentParser:
        v = verbs.add_parser(name, parents=[common], help=help, description=help)
        for add in per_verb:
            add(v)
        v.set_defaults(func=func)
        return v
    return verb


class _Parser(argparse.ArgumentParser):
    """Every noun and verb: the exit statuses in its --help; a usage error is a UsageError (one line,
    exit 2, the JSON envelope under --json), not argparse's usage dump."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _suite_version() -> str:
    try:
        return version("jinbao-netops")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before the noun (netops -i DIR inventory validate) and after the
    # verb (netops inventory validate -i DIR): the verbs' copies default to SUPPRESS, so a value given
    # before the noun is not overwritten by the verb's parser.
    def globals_(p: argparse.ArgumentParser, default) -> None:
        p.add_argument("--json", action="store_true", default=default if default is argparse.SUPPRESS else False,
                       help="machine-readable output on stdout (failures too: one JSON envelope)")
        p.add_argument("-i", "--inventory", metavar="PATH", default=default,
                       help="inventory directory or file (default: $NETOPS_INVENTORY, else the embedded default)")

    common = argparse.ArgumentParser(add_help=False)
    globals_(common, argparse.SUPPRESS)
    parser = _Parser(prog="netops", description="金保工程 network operations suite: inventory, lab twin, topology, "
                                                "provisioning, 等保 audit, collectors, monitoring, backup and drills.")
    globals_(parser, None)
    # where credential references resolve: the process environment, unless a caller (the cycle) hands
    # the verb another mapping (the lab's credentials), so nothing edits os.environ
    parser.set_defaults(environ=None)
    parser.add_argument("--version", action="version", version=f"netops (jinbao-netops) {_suite_version()}")
    nouns = parser.add_subparsers(dest="noun", metavar="NOUN", parser_class=_Parser)
    nouns.required = True
    for mod in COMMANDS:
        importlib.import_module(f"jinbao_netops.{mod}").register(nouns, common)
    return parser


def report(out: Out, e: NetopsError) -> int:
    """The one place a failure is shown: one line each on stderr, and under --json the envelope on stdout."""
    for line in e.lines():
        print(line if e.problems else f"netops: {line}", file=sys.stderr)
    if out.json_mode:
        out.json({"ok": False, "code": e.code, "error": e.message, "problems": e.problems})
    return e.code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    out = Out(json_mode="--json" in argv)  # until the arguments are parsed, so a usage error gets its envelope
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:  # named against the verb they were given to, not the top-level parser
            where = " ".join(x for x in ("netops", args.noun, getattr(args, "verb", None)) if x)
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see {where} --help)")
        out = Out(json_mode=args.json)
        return int(args.func(args, out) or 0)
    except NetopsError as e:
        return report(out, e)
    except KeyboardInterrupt:
        return report(out, NetopsError("interrupted", code=INTERRUPTED))
    except BrokenPipeError:  # `netops … | head`: the reader left; nothing more to say
        sys.stderr.close()
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
