"""Which of a role's controls a run applies, for the roles that apply several in one script task (one remote
action per host): a control runs when its ``dengbao_rule_<id>`` is true and --tags/--skip-tags select it
(``rule_<id>`` or the role's own tag)."""
from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean


def dengbao_selected(rules: list[str], enabled: list, group: str, run_tags: list[str], skip_tags: list[str]) -> list[str]:
    """``rules`` (ids with underscores), ``enabled`` their ``dengbao_rule_<id>`` values in the same order."""
    return [r for r, on in zip(rules, enabled, strict=True)
            if boolean(on, strict=False)
            and {"all", group, f"rule_{r}"} & set(run_tags)
            and not {group, f"rule_{r}"} & set(skip_tags)]


class FilterModule:
    def filters(self):
        return {"dengbao_selected": dengbao_selected}
