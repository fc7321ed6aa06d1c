"""The baseline catalogue (security/baseline.yml) and its parameters (security/params.yml).

Parameters are resolved per host the way Ansible resolves the same variables: the defaults in
params.yml (also the defaults of the playbooks' dengbao_params role), then playbooks/group_vars for
all → platform_* → role_* → level_* → the site hierarchy from the ministry down to the host's
site, then playbooks/host_vars/<host>. So a site's override changes remediation and audit alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from jinbao_netops.inventory.model import Role
from jinbao_netops.inventory.platforms import PLATFORMS
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.errors import UsageError

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE / "baseline.yml"
PARAMS = HERE / "params.yml"
PLAYBOOKS = HERE.parent / "playbooks"

VERDICTS = ("符合", "部分符合", "不符合", "不适用", "需人工举证")
PASS, PARTIAL, FAIL, NA, MANUAL = VERDICTS
VERDICT_EN = {PASS: "compliant", PARTIAL: "partially compliant", FAIL: "non-compliant",
              NA: "not applicable", MANUAL: "manual evidence required"}


@dataclass(frozen=True)
class Control:
    id: str
    clause: str
    item: str | None
    scope: str
    title_zh: str
    title_en: str
    params: tuple[str, ...]
    check: str
    fix: str
    automatable: bool
    evidence: str | None = None
    fixes: tuple[tuple[str, str], ...] = ()   # (platform, remediation) where it differs from ``fix``

    def fix_for(self, platform: str) -> str:
        """The remediation on ``platform``: its own commands, else the control's ``fix``."""
        return dict(self.fixes).get(platform, self.fix)

    @property
    def tag(self) -> str:
        return "rule_" + self.id.replace("-", "_")

    def clause_key(self) -> tuple:
        """Sort key: 8.1.4.10 after 8.1.4.9; a) before b)."""
        num, _, sub = self.clause.partition(" ")
        return (tuple(int(x) for x in num.split(".")), sub)


@dataclass
class Catalogue:
    controls: list[Control]
    clauses: dict[str, dict]
    defaults: dict = field(default_factory=dict)

    def by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    def scope(self, scope: str) -> list[Control]:
        return sorted((c for c in self.controls if c.scope == scope), key=Control.clause_key)

    def clause_title(self, clause: str) -> dict:
        return self.clauses.get(clause.split(" ")[0], {"zh": "", "en": ""})


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: cannot read: {str(e).splitlines()[0]}") from None


@cache
def load_catalogue(path: Path = CATALOGUE, params: Path = PARAMS) -> Catalogue:
    data, defaults = _yaml(path), _yaml(params)
    controls, seen = [], set()
    for i, raw in enumerate(data.get("controls") or []):
        where = f"{path}: controls[{i}]"
        try:
            c = Control(**{**raw, "params": tuple(raw.get("params") or ()), "item": raw.get("item"),
                           "fixes": tuple((raw.get("fixes") or {}).items())})
        except (TypeError, AttributeError) as e:
            raise UsageError(f"{where}: {e}") from None
        for plat, text in c.fixes:
            if plat not in PLATFORMS or not isinstance(text, str):
                raise UsageError(f"{where} {c.id!r}: field 'fixes': {plat!r}: not a platform with a remediation text")
        if c.id in seen:
            raise UsageError(f"{where} {c.id!r}: field 'id': duplicate")
        if c.scope not in ("server", "network"):
            raise UsageError(f"{where} {c.id!r}: field 'scope': must be server or network")
        if not c.automatable and not c.evidence:
            raise UsageError(f"{where} {c.id!r}: field 'evidence': a manual control must say what the evaluator asks for")
        for p in c.params:
            if p not in defaults:
                raise UsageError(f"{where} {c.id!r}: field 'params': {p!r} has no default in {params}")
        seen.add(c.id)
        controls.append(c)
    return Catalogue(controls, data.get("clauses") or {}, defaults)


def _vars_file(base: Path, name: str) -> dict:
    """group_vars/<name>.yml, group_vars/<name>.yaml or group_vars/<name>/*.yml, as Ansible reads them."""
    out: dict = {}
    files = [base / f"{name}.yml", base / f"{name}.yaml", base / name]
    for f in files:
        if f.is_dir():
            members = sorted([*f.glob("*.yml"), *f.glob("*.yaml")])
        elif f.is_file():
            members = [f]
        else:
            continue
        for m in members:
            data = _yaml(m) or {}
            if not isinstance(data, dict):
                raise UsageError(f"{m}: must be a mapping of variables")
            out.update(data)
    return out


def host_params(inv: Inventory, device_id: str, playbooks: Path = PLAYBOOKS) -> dict:
    d = inv.devices[device_id]
    site = inv.sites[d.site]
    groups = ["all", f"platform_{d.platform}", f"role_{d.role.value}", f"level_{site.level.value}"]
    groups += [s.id for s in reversed([site, *inv.ancestors(site.id)])]
    params = dict(load_catalogue().defaults)
    for g in groups:
        params.update(_vars_file(playbooks / "group_vars", g))
    params.update(_vars_file(playbooks / "host_vars", device_id))
    for key in ("dengbao_log_host", "dengbao_ntp_server"):
        if not params.get(key):
            params[key] = province_service_host(inv, device_id)
    return params


def province_service_host(inv: Inventory, device_id: str) -> str:
    """The province's log/time host: the monitor at the device's province; a province's monitor itself
    reports to the ministry's; empty for the ministry's own monitor (the top of the chain)."""
    site = inv.site_of(device_id)
    for s in (inv.province_of(site.id), inv.ministry):
        for did in inv.devices_at(s.id, Role.monitor) if s else []:
            if did != device_id:
                return str(inv.devices[did].management)
    return ""
