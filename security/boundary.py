"""GB/T 22239-2019 8.1.3.2 a) boundary access control (``net-boundary-acl``), judged on the suite's own
records and the boundary device's live rules.

A boundary device (role firewall or gap_gateway, any platform) is 符合 when
  a. its rules were pushed from today's zone policy: the newest push record (``netops zones apply``,
     ``<inventory dir>/changes/zones.jsonl``) that applied them (or found nothing to change) carries the
     digest of today's rendering;
  b. it holds them (nftables): ``nft list table inet netops_zones``, read as root by the collection script,
     equals what that push verified, and its forward chain drops by default. A vendor firewall's live
     rule base is not compared here: that part is 需人工举证, and so is the control (never 符合 without it);
  c. the flows were probed since (``netops zones check`` on the twin, ``zones-checks.jsonl``), within
     ``dengbao_zone_probe_max_days``, and every probe across it came out as the policy says.
A failed part is 不符合, naming what failed. A network device that is no boundary is 不适用 (the
boundaries are elsewhere) — unless the inventory models no boundary at all: then nothing shows where
the boundary is, and it is 需人工举证. A record file that cannot be read or holds a corrupt line is no
evidence: 需人工举证 with why, never a verdict.
"""
from __future__ import annotations

import difflib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from jinbao_netops.errors import NetopsError
from jinbao_netops.inventory.model import zone_label
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.topology import zones
from jinbao_netops.topology.graph import Topology, build
from jinbao_netops.topology.provision.allocate import inventory_dir

from .catalogue import FAIL, MANUAL, NA, PASS

CONTROL = "net-boundary-acl"
KEY = "dengbao_boundary"          # the engine's view of the host's boundary, in its parameters
PUSH_LOG, CHECK_LOG, HOLDS = zones.PUSH_LOG, zones.CHECK_LOG, zones.HOLDS  # the records `netops zones` keeps


def _when(rec: dict) -> float:
    t = datetime.fromisoformat(rec["when"])
    if t.tzinfo is None:
        raise ValueError("when: no time zone")
    return t.timestamp()


def _push_ok(rec: dict) -> None:
    for k in ("device", "result", "rendered_sha256"):
        if not isinstance(rec[k], str):
            raise TypeError(f"{k}: not a string")
    if rec["result"] in HOLDS and rec.get("syntax") == "nftables" and not isinstance(rec["installed"], str):
        raise TypeError("installed: not a string")


def _check_ok(rec: dict) -> None:
    for p in rec["probes"]:
        if not (isinstance(p["boundaries"], list) and isinstance(p["ok"], bool)):
            raise TypeError("probes: boundaries must be a list, ok a boolean")


def read_log(path: Path, valid) -> tuple[list[dict], str]:
    """(records oldest first, each with its ``line`` and time ``t``; why the file is no evidence, or "").
    A missing file holds no record; an unreadable one, or a line that is not a whole record, is no evidence."""
    if not path.exists():
        return [], ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return [], f"{path}: cannot be read 无法读取 ({type(e).__name__}: {getattr(e, 'strerror', None) or e})"
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            valid(rec)
            out.append({**rec, "line": n, "t": _when(rec)})
        except (ValueError, KeyError, TypeError) as e:
            return [], f"{path} line {n}: corrupt record 记录损坏 ({type(e).__name__}: {e})"
    return out, ""


@dataclass
class Evidence:
    """What the audit judges every host's boundary control on: the inventory's boundary devices, their
    renderings from today's policy and the zone records (read once per run, when there is a boundary)."""

    inv: Inventory
    changes: Path | None = None   # default: the inventory's changes directory
    now: float = field(default_factory=time.time)

    @cached_property
    def boundaries(self) -> list[str]:
        return sorted(d for d, dev in self.inv.devices.items() if dev.boundary)

    @cached_property
    def records(self) -> dict:
        cdir = self.changes or inventory_dir(self.inv.root) / "changes"
        pushes, bad_push = read_log(cdir / PUSH_LOG, _push_ok)
        checks, bad_check = read_log(cdir / CHECK_LOG, _check_ok)
        return {"pushes": pushes, "checks": checks, "error": "; ".join(x for x in (bad_push, bad_check) if x),
                "push_log": str(cdir / PUSH_LOG), "check_log": str(cdir / CHECK_LOG)}

    @cached_property
    def topology(self) -> Topology:
        return build(self.inv)

    def rendering(self, device: str) -> tuple[str, str]:
        """(syntax, digest) of the device's rules rendered from today's zone policy."""
        syntax, _, text = zones.render(self.topology, device)
        return syntax, zones.digest(text)

    def view(self, host: str) -> dict:
        """The host's part, as the audit engine adds it to the host's parameters (``KEY``)."""
        dev = self.inv.devices[host]
        if not dev.boundary:
            return {"zone": dev.zone.value, "boundaries": self.boundaries}
        rec = self.records
        out = {"device": host, "now": self.now, "push_log": rec["push_log"], "check_log": rec["check_log"],
               "error": rec["error"]}
        if rec["error"]:
            return out
        try:
            out["syntax"], out["digest"] = self.rendering(host)
        except NetopsError as e:
            out["error"] = f"its rules cannot be rendered from the zone policy 无法生成边界规则: {e.message}"
            return out
        pushes = [p for p in rec["pushes"] if p["device"] == host and p["result"] in HOLDS]
        out["push"] = pushes[-1] if pushes else None
        checks = [{**c, "probes": [p for p in c["probes"] if host in p["boundaries"]]} for c in rec["checks"]]
        checks = [c for c in checks if c["probes"]]
        out["check"] = checks[-1] if checks else None
        out["read"] = zones.NFT_LIST if out["syntax"] == "nftables" else None
        return out


def read_command(params: dict) -> str | None:
    """The collection script's command for the host's live zone table (a boundary on nftables), else None."""
    return (params.get(KEY) or {}).get("read")


def is_boundary(params: dict) -> bool:
    return "device" in (params.get(KEY) or {})


@dataclass
class Judgement:
    verdict: str
    findings: list[dict]
    why: str                  # 不适用 / 需人工举证: the reason
    command: str | None       # where the evidence was read


def _sub(label: str, ok: bool, detail: str) -> dict:
    return {"label": label, "ok": bool(ok), "detail": detail}


def _at(log: str, rec: dict) -> str:
    return f"{Path(log).name} line {rec['line']} ({rec['when']})"


def _days(now: float, t: float) -> str:
    return f"{(now - t) / 86400:.1f} d ago"


def _first_difference(recorded: str, live: str) -> str:
    for ln in difflib.unified_diff(recorded.splitlines(), live.splitlines(), lineterm="", n=0):
        if ln[:1] in "+-" and not ln.startswith(("+++", "---")):
            return ln
    return ""


def _live(view: dict, facts: dict) -> tuple[list[dict], str]:
    """Part b on an nftables device: (findings, why it could not be judged)."""
    if "zones" not in facts:
        return [], f"the host's collection has no [zones] section ({zones.NFT_LIST} not run, e.g. a saved collection) 未采集边界规则"
    text = facts["zones"]
    if not re.search(rf"^table {re.escape(zones.NFT_TABLE)} {{", text, re.M):
        first = text.strip().splitlines()[0] if text.strip() else "no output 无输出"
        return [_sub(f"table {zones.NFT_TABLE} on the device 边界规则表存在", False, f"{zones.NFT_LIST}: {first}")], ""
    live = zones.nft_installed(text)
    subs = []
    if view["push"] is not None:
        diff = _first_difference(view["push"].get("installed") or "", live)
        subs.append(_sub("live rules = the rules the push verified 设备规则与下发一致", not diff,
                         f"{zones.NFT_LIST} vs {_at(view['push_log'], view['push'])} installed: "
                         + (f"first difference 首个差异 (- recorded, + live): {diff[0]} {diff[1:].strip()}" if diff else "identical 一致")))
    drop = next((ln.strip() for ln in live.splitlines() if zones.POLICY_DROP.match(ln)), "")
    subs.append(_sub("forward chain policy drop 默认拒绝", bool(drop),
                     f"{zones.NFT_LIST}: {drop or 'no forward hook with policy drop 无默认拒绝'}"))
    return subs, ""


def _probes(view: dict, params: dict) -> dict:
    """Part c: the newest probe run across the device, after the push, within the period, all as expected."""
    dev, check, push, now = view["device"], view["check"], view["push"], view["now"]
    max_days = params["dengbao_zone_probe_max_days"]
    label = f"flows probed since the push, within {max_days} d, all as the policy says 探测矩阵符合策略"
    if check is None:
        return _sub(label, False, f"no probe across {dev} in {view['check_log']} — run netops zones check (dynamic) 无探测记录")
    at = _at(view["check_log"], check)
    if push is not None and check["t"] <= push["t"]:
        return _sub(label, False, f"{at}: probed before the push {_at(view['push_log'], push)} 探测早于下发")
    if now - check["t"] > max_days * 86400:
        return _sub(label, False, f"{at}: {_days(now, check['t'])}, older than {max_days} d 探测已过期")
    bad = next((p for p in check["probes"] if not p["ok"]), None)
    if bad is not None:
        port = f"/{bad['port']}" if bad.get("port") else ""
        return _sub(label, False, f"{at}: {bad.get('source')} → {bad.get('daddr')} {bad.get('protocol')}{port}"
                                  f"{' (' + bad['flow'] + ')' if bad.get('flow') else ''}: expected {bad.get('expect')}, "
                                  f"outcome {bad.get('outcome')} 探测不符")
    return _sub(label, True, f"{at}: {len(check['probes'])} probes across {dev}, all as expected 全部符合")


def judge(params: dict, facts: dict) -> Judgement:
    """The control on one host, from the engine's view in ``params`` and the host's collected ``facts``."""
    view = params.get(KEY)
    if view is None:
        return Judgement(MANUAL, [], "需人工举证 — no zone view given: the audit engine judges the boundaries 未提供安全区视图", None)
    if "device" not in view:
        if not view["boundaries"]:
            return Judgement(MANUAL, [], "需人工举证 — the inventory models no zone boundary: declare zones and boundary "
                                         "devices (firewall, gap_gateway) 清单未建模安全区边界", None)
        return Judgement(NA, [], f"非边界设备 not a boundary device: all its interfaces are in zone {zone_label(view['zone'])}; "
                                 f"the boundaries are enforced on {', '.join(view['boundaries'])}", None)
    command = f"{view['push_log']}; {view['check_log']}"
    if view["error"]:
        return Judgement(MANUAL, [], f"需人工举证 — {view['error']}", command)
    dev, push = view["device"], view["push"]
    fix = f"rules not pushed from today's policy — run netops zones apply {dev} 规则未按当前策略下发"
    if push is None:
        subs = [_sub("rules pushed from today's policy 按当前策略下发", False, f"no applied push of {dev} in {view['push_log']}: {fix}")]
    else:
        same = push["rendered_sha256"] == view["digest"]
        subs = [_sub("rules pushed from today's policy 按当前策略下发", same,
                     f"{_at(view['push_log'], push)}, change {push.get('change')}, {push['result']} by {push.get('who')}: "
                     f"sha256 {push['rendered_sha256'][:12]}" + ("" if same else f" ≠ today's rendering {view['digest'][:12]}: {fix}"))]
    manual = ""
    if view["read"]:
        command += f"; {view['read']}"
        live, manual = _live(view, facts)
        subs += live
    else:
        manual = (f"the live rule base of a {view['syntax']} device is not compared by the audit: bring its rule listing "
                  f"设备现行策略需人工核对")
    subs.append(_probes(view, params))
    verdict = FAIL if not all(s["ok"] for s in subs) else MANUAL if manual else PASS
    why = f"需人工举证 — {manual}" if verdict == MANUAL else f"not judged 未判定: {manual}" if manual else ""
    return Judgement(verdict, subs, why, command)
