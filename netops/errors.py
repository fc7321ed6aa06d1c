"""The one error contract: every failure the suite reports is a ``NetopsError`` carrying its exit
status, and the CLI core (``cli.main``) maps it once — a one-line message on stderr, or under
``--json`` one envelope on stdout: ``{"ok": false, "code": N, "error": "...", "problems": [...]}``.

Exit statuses, the same for every verb:

=====  =============================================================================================
0      ok
1      findings: something in the network is not as it should be (a node down, a non-compliant
       control, a failed drill)
2      bad input or usage (one line naming the file, object and field)
3      partial: some targets were unreachable or refused (the others completed)
4      the command itself failed (the lab could not start, a tool is missing, a timeout of the
       suite's own work)
130    interrupted (Ctrl-C)
=====  =============================================================================================
"""
from __future__ import annotations

OK, FINDINGS, BAD_INPUT, PARTIAL, FAILED, INTERRUPTED = 0, 1, 2, 3, 4, 130

EXIT_CODES_HELP = ("Exit status: 0 ok, 1 findings, 2 bad input or usage, 3 partial (some targets unreachable), "
                   "4 the command itself failed, 130 interrupted")


class NetopsError(Exception):
    """A failure with its exit status. ``problems`` holds one line each when there are several
    (an inventory with many errors); ``message`` is the one line otherwise."""

    code: int = FAILED

    def __init__(self, message: str = "", *, problems: list[str] | None = None, code: int | None = None):
        self.problems = list(problems or [])
        self.message = message or "\n".join(self.problems)
        super().__init__(self.message)
        if code is not None:
            self.code = code

    def lines(self) -> list[str]:
        return self.problems or [self.message]


class UsageError(NetopsError):
    """Bad input from the user (arguments, files, the inventory): exit status 2."""

    code = BAD_INPUT


class DeviceError(NetopsError):
    """One device could not be reached, refused a command, or presented a host key we do not
    trust. Callers that work on many devices report it for that device and go on; when it ends a
    command it means the run was partial (exit status 3)."""

    code = PARTIAL

    def __init__(self, device: str, detail: str, **kw):
        self.device, self.detail = device, detail
        super().__init__(f"device '{device}': {detail}", **kw)


class LabError(NetopsError):
    """The lab twin could not be brought to the asked state (exit status 4)."""


class ToolError(NetopsError):
    """A tool the suite drives (git, restic, Prometheus …) failed or timed out (exit status 4)."""
