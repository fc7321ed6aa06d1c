"""Counts what a playbook run does on each host, for bench/bench_harden.py: remote actions (a module run
on the host: one per task, one per loop item; local actions such as assert or set_fact are not counted),
changed and failed results. Written as JSON to $NETOPS_ACTIONS_OUT when the run ends."""
from __future__ import annotations

import collections
import json
import os

from ansible.plugins.callback import CallbackBase

# actions that run on the controller only (as written, bare or ansible.builtin.*)
LOCAL = {"assert", "set_fact", "include_vars", "debug", "meta", "fail", "include_tasks", "import_tasks",
         "include_role", "import_role"}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netops_actions"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.hosts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def _count(self, result, key: str) -> None:
        task = result._task
        if task.action.removeprefix("ansible.builtin.") in LOCAL or task.delegate_to:
            return
        self.hosts[result._host.get_name()][key] += 1

    def _result(self, result, failed: bool = False) -> None:
        if not result._task.loop:  # a loop's items were counted one by one
            self._count(result, "actions")
        if result._result.get("changed"):
            self._count(result, "changed")
        if failed:
            self._count(result, "failed")

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, failed=not ignore_errors)

    def v2_runner_item_on_ok(self, result):
        self._count(result, "actions")

    def v2_runner_item_on_failed(self, result):
        self._count(result, "actions")

    def v2_playbook_on_stats(self, stats):
        out = os.environ.get("NETOPS_ACTIONS_OUT")
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                json.dump({h: dict(c) for h, c in self.hosts.items()}, fh)
