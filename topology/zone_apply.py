"""`netops zones apply`: a boundary device's rules, rendered from the zone policy, pushed with the provisioning
engine's safety — per device its lock, a backup of what it holds, the change, a verification, a rollback that
must give back the backup exactly, and a record (``<inventory>/changes/zones.jsonl``, what the audit's
``net-boundary-acl`` reads).

The verification is the proof itself: the table holds a forward chain whose policy is drop, and the dynamic
zone check (topology/zoneprobe.py) for that boundary — every allowed flow through it gets through, the
forbidden sample does not. Only then are the rules saved (``/etc/netops/zones.nft``, loaded at boot by the
``netops-zones`` unit after nftables' own ruleset).

Pushing is built for nftables, the Linux boundary nodes of the lab twin; USG, SecPath and ASA renderings are
text (``zones rules``) until their devices can be verified the same way.
"""
from __future__ import annotations

import difflib
import os
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops.errors import DeviceError, UsageError
from jinbao_netops.files import write_atomic
from jinbao_netops.backup.replication import as_root
from jinbao_netops.inventory.engines import Command

from . import zoneprobe, zones
from .provision import engine

SAVED = "/etc/netops/zones.nft"
UNIT = "netops-zones.service"

# Reads the table (empty when absent); exit status 0 either way.
LIST = f"if nft list tables | grep -qxF 'table {zones.NFT_TABLE}'; then {zones.NFT_LIST}; fi"

# Saves the rules (stdin) and the unit that loads them at boot, after nftables.service's own ruleset.
SAVE = f"""set -e
umask 077
mkdir -p /etc/netops
cat > {SAVED}.tmp
mv {SAVED}.tmp {SAVED}
cat > /etc/systemd/system/{UNIT}.tmp <<'UNIT'
[Unit]
Description=netops zone boundary rules (rendered from the zone policy)
After=nftables.service
Wants=network-pre.target
Before=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f {SAVED}

[Install]
WantedBy=multi-user.target
UNIT
mv /etc/systemd/system/{UNIT}.tmp /etc/systemd/system/{UNIT}
systemctl daemon-reload
systemctl enable --quiet {UNIT}
"""

def _run(session, cmd: Command) -> str:
    return session.run(cmd.line, input=cmd.input)


def installed(session) -> str:
    """The table as the device holds it (``zones.nft_installed``); "" when it has none."""
    text = _run(session, as_root(LIST))
    return zones.nft_installed(text) if text.strip() else ""


def _restore(before: str) -> str:
    """What puts the table back as it was: its listing re-read by nft, or no table at all."""
    if not before:
        return f"table {zones.NFT_TABLE}\ndelete table {zones.NFT_TABLE}\n"
    return f"table {zones.NFT_TABLE}\ndelete table {zones.NFT_TABLE}\n{before}"


def last_applied(cdir: Path, device: str) -> dict | None:
    for rec in reversed(engine.history(cdir, zones.PUSH_LOG)):
        if rec.get("device") == device and rec.get("result") in zones.HOLDS:
            return rec
    return None


def _templates() -> Path | None:
    # the lab test's hook (as link provisioning's NETOPS_PROVISION_TEMPLATES): a broken copy exercises the rollback
    d = os.environ.get("NETOPS_ZONE_TEMPLATES")
    return Path(d) if d else None


def apply_device(access, topo, cdir: Path, device: str, check: bool = False, step=lambda *a, **k: None) -> dict:
    inv = topo.inv
    syntax, rules, text = zones.render(topo, device, _templates())
    if syntax != "nftables":
        raise UsageError(f"{inv.root}: device {device!r}: field 'platform': pushing zone rules is built for nftables "
                         f"boundaries (Linux); a {inv.devices[device].platform} boundary's rules are text: netops zones "
                         f"rules {device}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    rec = {"change": f"{stamp}-zones-{device}", "when": datetime.now(UTC).isoformat(timespec="seconds"),
           "who": engine.who(), "action": "zones-apply", "device": device, "syntax": syntax,
           "rendered_sha256": zones.digest(text), "rules": len(rules)}
    session = access.session(device)
    before = installed(session)
    last = last_applied(cdir, device)
    if check:
        same = bool(before) and last is not None and last["rendered_sha256"] == rec["rendered_sha256"] \
            and last.get("installed") == before
        return {**rec, "result": "check", "ok": True, "would_change": not same, "holds": before, "text": text}
    bfile = cdir / "backups" / f"{stamp}-{device}.nft"
    write_atomic(bfile, before, 0o600)
    rec["backup"] = str(bfile)
    if before and last is not None and last["rendered_sha256"] == rec["rendered_sha256"] and last.get("installed") == before:
        return _finish(cdir, {**rec, "result": "no_change", "ok": True, "installed": before, "verification": []})
    try:
        _run(session, as_root("nft -f -", input=text))
        step(1, f"{device}: pushed 已下发")
        after = installed(session)
        rec["diff"] = diff(before, after)
        verification = [{"check": "forward chain policy drop 默认拒绝", "ok": bool(zones.POLICY_DROP.search(after)),
                         "evidence": zones.NFT_LIST}]
        probes = zoneprobe.run(access, zoneprobe.plan(zones.ZoneView(topo), {device}))
        verification += [{"check": f"{'应通 allowed' if p.expect == 'pass' else '应阻断 forbidden'} {p.what}", "ok": p.ok,
                          "evidence": p.outcome} for p in probes]
        rec["probes"] = [p.as_dict() for p in probes]
    except DeviceError as e:
        verification, after = [{"check": "push 下发", "ok": False, "evidence": str(e)}], None
    except KeyboardInterrupt:
        _finish(cdir, {**rec, "result": "interrupted", "ok": False, "rollback": _rollback(session, before)})
        raise
    rec["verification"] = verification
    step(1, f"{device}: verified 已验证")
    if not all(v["ok"] for v in verification):
        return _finish(cdir, {**rec, "result": "rolled_back", "ok": False, "rollback": _rollback(session, before)})
    try:
        _run(session, as_root(SAVE, input=text))
    except DeviceError as e:
        verification.append({"check": "save 保存", "ok": False, "evidence": str(e)})
        return _finish(cdir, {**rec, "result": "rolled_back", "ok": False, "rollback": _rollback(session, before)})
    return _finish(cdir, {**rec, "result": "applied", "ok": True, "installed": after})


def diff(before: str, after: str) -> list[str]:
    """What the push changed on the device, as nft lists it: +/- lines (a device without the table: all +)."""
    return [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def _rollback(session, before: str) -> dict:
    try:
        _run(session, as_root("nft -f -", input=_restore(before)))
        now = installed(session)
        return {"identical": now == before, "error": ""}
    except DeviceError as e:
        return {"identical": False, "error": str(e)}


def _finish(cdir: Path, rec: dict) -> dict:
    engine.append_record(cdir, {k: v for k, v in rec.items() if k != "text"}, zones.PUSH_LOG)
    return rec


def apply(access, topo, cdir: Path, devices: list[str], check: bool = False, step=lambda *a, **k: None) -> list[dict]:
    """Each boundary device in turn, under its device lock (the provisioning engine's: a link change or a
    hardening of the same device waits)."""
    out = []
    for dev in devices:
        with (nullcontext() if check else engine.change_locks(cdir, [dev])):
            out.append(apply_device(access, topo, cdir, dev, check, step))
    return out


def record_check(cdir: Path, rec: dict) -> None:
    engine.append_record(cdir, rec, zones.CHECK_LOG)
