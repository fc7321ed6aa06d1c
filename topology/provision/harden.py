"""`netops harden devices [--scope] [--check]`: the 等保 device baseline, pushed with provisioning's safety.

The baseline is rendered per platform from ``templates/<platform>/baseline.j2`` with the parameters the
device rule packs audit against (``security/params.yml`` through ``host_params``: idle timeout, banner,
lockout, the device's own log host and NTP server) and the inventory (the management network → the
VTY/management ACL; the SNMPv3 user, its keys resolved from the credential references at render time and
redacted in every record). It goes through the same engine as a county link: backup → diff (lines the
running config lacks; old values of single-value settings and the rule packs' forbidden lines removed with
the platform's negation) → push armed with the native safety → verify (the running config read back and
judged by the audit's own device rules: every automatable control the device's configuration carries
must be 符合) → confirm and save, or roll back. One change record per device in
``<changes>/harden.jsonl``. A device that fails (unreachable, refused, a missing credential) is reported
for itself; the others go on.

FRR: the daemon's part only (line vty exec-timeout and access-class, log syslog). Login
lockout, SNMPv3, time, the login banner, management services and their crypto are its Linux host's (sshd, snmpd, chrony,
PAM): the servers' Ansible roles set them, and the audit judges them there.
"""
from __future__ import annotations

import ipaddress
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops.access import Access
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, DeviceError, UsageError
from jinbao_netops.inventory import Inventory, load
from jinbao_netops.inventory.platforms import redact
from jinbao_netops.monitoring import silences
from jinbao_netops.output import Out
from jinbao_netops.security import devicerules
from jinbao_netops.security.audit import audit_network
from jinbao_netops.security.catalogue import PASS, host_params, load_catalogue

from . import engine as en
from . import render as rd

TEMPLATE = "baseline.j2"
LOG = "harden.jsonl"
# how a device may print a secret it was given (VRP "cipher", Comware "simple" → "cipher"): not a difference
_SECRET_FORM = re.compile(r"\b(?:simple|cipher|irreversible-cipher) ")


def targets(inv: Inventory, scope: str | None) -> list[str]:
    """The network devices in scope (servers are hardened by the Ansible roles)."""
    return [d for d in inv.scope(scope) if inv.devices[d].platform_info.kind == "network"]


def forbidden(platform: str) -> list[str]:
    """The rule packs' ``absent`` requirements of the automatable controls: lines that must not be there."""
    cat = load_catalogue()
    out = []
    for c in cat.scope("network"):
        reqs = devicerules.rule(platform, c.id)
        if c.automatable and isinstance(reqs, list):
            out.extend(r.regex for r in reqs if r.kind == "absent")
    return out


def check_inputs(inv: Inventory, devices: list[str]) -> dict[str, dict]:
    """Every device's parameters, or every problem at once (bad input, before any device is touched)."""
    problems, params = [], {}
    for d in devices:
        dev = inv.devices[d]
        where = f"{inv.root}: device '{d}'"
        p = host_params(inv, d)
        for key in ("dengbao_log_host", "dengbao_ntp_server"):
            if not p.get(key):
                problems.append(f"{where}: field '{key}': empty and no monitor at its province or the ministry "
                                f"(set it in playbooks/group_vars)")
        cred = inv.credentials.get(dev.credentials)
        if dev.platform != "frr" and (cred is None or cred.snmp is None):
            problems.append(f"{where}: field 'credentials': profile {dev.credentials!r} has no snmp user for the SNMPv3 baseline")
        params[d] = p
    if problems:
        raise UsageError(problems=problems)
    return params


def context(inv: Inventory, dev, params: dict, running: str, access: Access) -> dict:
    """Everything a baseline template needs; the SNMP keys only through ``secret(name)``, resolved when rendered."""
    cred = inv.credentials[dev.credentials]

    def secret(name: str) -> str:
        return access.secret(dev.credentials, f"snmp.{name}", getattr(cred.snmp, name))

    idle, lock = int(params["dengbao_idle_timeout"]), int(params["dengbao_lock_unlock_time"])
    return {"device": dev, "running": [n.line for n in rd.parse(running).children],
            "mgmt": ipaddress.ip_network(inv.network.address_plan.management),
            "snmp_user": cred.snmp.user if cred.snmp else None, "secret": secret,
            "log_host": params["dengbao_log_host"], "ntp_server": params["dengbao_ntp_server"],
            "banner": params["dengbao_login_banner"], "idle_minutes": idle // 60, "idle_seconds": idle % 60,
            "lock_deny": int(params["dengbao_lock_deny"]), "lock_minutes": max(1, -(-lock // 60))}


def compliance(platform: str, params: dict, config: str) -> list[dict]:
    """The audit's own verdict on ``config``: one check per automatable control the configuration carries
    (controls an FRR router leaves to its Linux host are judged there, the boundary control on the zone records)."""
    out = []
    for r in audit_network(load_catalogue(), platform, params, config, "", ""):
        if not r["automatable"] or not devicerules.on_config(platform, r["id"]):
            continue
        out.append({"check": f"{r['id']} {r['title_zh']}", "ok": r["verdict"] == PASS,
                    "evidence": "; ".join(f"{'✓' if f['ok'] else '✗'} {f['label']}: {f['detail']}" for f in r["findings"])})
    return out


def harden_device(inv: Inventory, device: str, params: dict, access: Access, opts: en.Options, cdir: Path,
                  change: str) -> dict:
    dev = inv.devices[device]
    plat = dev.platform_info
    rec = {"change": change, "when": datetime.now(UTC).isoformat(timespec="seconds"), "who": en.who(),
           "action": "harden", "device": device, "platform": dev.platform, "diff": [], "commands": [], "backup": None}
    e = en.End(None, dev)
    try:
        e.session = access.session(device)
        with nullcontext() if opts.check else en.change_locks(cdir, [device]):
            bfile = en.backup(e, cdir, datetime.now(UTC).strftime("%Y%m%dT%H%M%S"), opts)
            try:
                e.intended = rd.render(en.template_dir(opts), dev, TEMPLATE, context(inv, dev, params, e.backup, access))
            except UsageError as x:  # a credential reference that does not resolve: this device only
                raise DeviceError(device, f"{x} (nothing pushed 未下发任何配置)") from None
            e.changes = rd.diff(rd.parse(e.backup), rd.parse(e.intended), lambda header: False, plat.negate,
                                plat.single_value, forbidden(dev.platform),
                                key=lambda line: _SECRET_FORM.sub("", redact(dev.platform, line)),
                                unprinted=plat.unprinted)
            rec.update(en.device_entry(e, bfile))
            if opts.check or not e.changes:
                rec["verification"] = compliance(dev.platform, params, e.backup)
                rec["result"] = "check" if opts.check else "no_change"
                rec["ok"] = opts.check or all(c["ok"] for c in rec["verification"])
                return rec
            return _apply(e, params, opts, cdir, rec)
    except DeviceError as x:  # before anything was pushed (push() reports its own failures as evidence)
        rec.update(result="error", ok=False, error=x.detail)
        return rec


def _apply(e: en.End, params: dict, opts: en.Options, cdir: Path, rec: dict) -> dict:
    try:
        evidence = en.push([e], opts, rec, lambda: compliance(e.device.platform, params, e.session.show_running()))
    except KeyboardInterrupt:  # Ctrl-C mid-change: put the device back, record it, then stop (exit 130)
        rec["rollback"] = en.rollback([e])
        rec.update(result="interrupted", ok=False)
        en.append_record(cdir, rec, LOG)
        raise
    if all(c["ok"] for c in evidence):
        rec.update(result="applied", ok=True)
    else:
        rec["rollback"] = en.rollback([e])
        rec.update(result="rolled_back", ok=False)
    en.append_record(cdir, rec, LOG)
    return rec


def harden(root: Path, scope: str | None, opts: en.Options, environ=None, parallel: int = 8) -> dict:
    """Harden every network device in ``scope``; returns the run's result (each device's also recorded)."""
    inv = load(root)
    tdir = en.template_dir(opts)
    # a platform without a baseline yet (cisco_asa) is reported for its devices; the others go on
    devices = [d for d in targets(inv, scope) if (tdir / inv.devices[d].platform / TEMPLATE).is_file()]
    results = {d: {"device": d, "platform": inv.devices[d].platform, "diff": [], "commands": [], "result": "error", "ok": False,
                   "error": f"no device baseline for platform {inv.devices[d].platform!r} ({tdir / inv.devices[d].platform / TEMPLATE})"}
               for d in targets(inv, scope) if d not in devices}
    params = check_inputs(inv, devices)
    cdir = en.changes_dir(root, opts)
    # one change for the run (each device's record carries its id), one maintenance window over its devices
    change = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-harden-{scope or 'all'}"
    window = nullcontext() if opts.check else silences.maintenance(inv, devices, change, f"harden devices {scope or 'all'}", en.who())
    with window as win, Access(inv, environ, port=opts.port) as access, ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futs = {d: pool.submit(harden_device, inv, d, params[d], access, opts, cdir, change) for d in devices}
        for d, f in futs.items():
            results[d] = f.result()
            opts.step(1, f"{d} {results[d]['result']}")
    counts: dict[str, int] = {}
    for r in results.values():
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    return {"tool": "netops harden devices", "change": change, "scope": scope or "all", "check": opts.check, "maintenance": win,
            "devices": results, "summary": counts, "ok": all(r["ok"] for r in results.values())}


# --- the command -------------------------------------------------------------------------------

_VERDICT = {"check": "检查完成 check only, nothing changed", "no_change": "无变化 no change needed",
            "applied": "已生效 applied, verified and saved", "rolled_back": "验证失败已回滚 verification failed, rolled back",
            "error": "失败 failed", "interrupted": "已中断 interrupted"}


def register(nouns, common) -> None:
    p = nouns.add_parser("harden", help="harden network devices to the 等保 device baseline")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    help = ("push the 等保 device baseline to every network device in scope, with backup, diff, native "
            "commit-confirm, verification by the audit's device rules, and save or rollback 网络设备加固")
    v = verbs.add_parser("devices", parents=[common], help=help, description=help)
    v.add_argument("--scope", metavar="SITE|DEVICE", help="a site (and every site below it) or one device (default: all)")
    v.add_argument("--check", action="store_true", help="read the running configs and show the diff; change and write nothing")
    v.add_argument("--changes", metavar="DIR", help="change records and backups (default: <inventory>/changes; "
                                                    "--check writes backups only here, and nothing without it)")
    v.set_defaults(func=cmd_devices)


def cmd_devices(args, out: Out) -> int:
    from jinbao_netops.files import out_path

    from .commands import inventory_root

    root = inventory_root(args)
    n = len(targets(load(root), args.scope))
    with out.progress("harden devices 网络设备加固", total=n) as step:
        opts = en.Options(check=args.check, step=step,
                          changes=out_path(args.changes, "--changes", directory=True) if args.changes else None)
        res = harden(root, args.scope, opts, environ=args.environ)
    _report(out, res)
    results = res["devices"].values()
    if any(r["result"] in ("rolled_back", "no_change") and not r["ok"] for r in results):
        return FINDINGS
    return PARTIAL if any(r["result"] == "error" for r in results) else OK


def _report(out: Out, res: dict) -> None:
    if out.json_mode:
        out.json(res)
        return
    window = silences.summary(res["maintenance"])
    if window:
        out.print(window, markup=False)
    for dev, r in res["devices"].items():
        out.print(f"[bold]{dev}[/] ({r['platform']}) diff 差异:" + ("" if r["diff"] else " (none 无)"))
        for line in r["diff"]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            out.print(line, style=style, markup=False)
        failed = [c["check"] for c in r.get("verification", []) if not c["ok"]]
        if failed:
            out.print("  不符合 non-compliant: " + ", ".join(failed), markup=False)
        for rb in r.get("rollback", []):
            out.print(f"  rollback 回滚: running config {'identical to backup 与备份一致' if rb['identical'] else 'DIFFERS from backup 与备份不一致'}")
        out.print(f"  {_VERDICT[r['result']]}" + (f": {r['error']}" if r.get("error") else ""), markup=False)
