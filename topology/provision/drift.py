"""Drift: intended vs running vs saved, per network device.

The intended configuration of a device is what provisioning renders for it: the link template of
each of its links (``render.render_end``, the inventory's addresses for an active link, none for a
planned one), merged. Running and saved configurations are read through the access layer (the
platform table's ``show_running`` and ``show_saved``) and everything is compared as hier_config trees
(``render.hconfig``: the platform's driver and volatile lines). Three findings per device:

* **drift** 配置漂移 — intended lines the running configuration lacks;
* **unauthorised** 未授权变更 — running lines outside the intent in the stanzas the suite owns (the
  interfaces of its links: ``render.owns``, the rule provisioning removes lines by);
* **unsaved** 未保存 — running ≠ saved: lines a reboot would lose, or bring back.

``fix`` re-provisions the links of the devices that drifted through the engine's own safe push
(``engine.change``: diff, commit-confirm, verify, roll back, change record), then reads again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hier_config import HConfig
from hier_config.exceptions import DuplicateChildError

from jinbao_netops.access import Access, network_devices, read_each
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, NetopsError
from jinbao_netops.inventory import Inventory, load
from jinbao_netops.inventory.model import LinkKind, LinkState
from jinbao_netops.inventory.platforms import PLATFORMS, redact

from . import engine as en
from . import render as rd


@dataclass
class Intent:
    config: object          # hier_config tree of every line the suite renders for the device
    owned: object           # owned(header) → True for a top-level stanza the suite owns whole
    links: list[str]        # the links it is rendered from (what a fix re-provisions)


def intent(inv: Inventory, device: str, template_dir: Path = rd.TEMPLATES) -> Intent:
    """The device's intent from its point-to-point links whose two ends have a link template (a LAN
    is the lab's and the servers' business, not a provisioned link)."""
    dev = inv.devices[device]
    config, owners, links = rd.hconfig(dev.platform), [], []
    for lid in sorted(inv.links_by_device.get(device, [])):
        link = inv.links[lid]
        if link.kind == LinkKind.lan or not all((template_dir / inv.devices[e.device].platform / "link.j2").is_file()
                                                for e in link.ends()):
            continue
        end = link.a if link.a.device == device else link.b
        want = {str(e): inv.interface(e).address for e in link.ends()} if link.state == LinkState.active else {}
        rd.merge(config, rd.hconfig(dev.platform, rd.render_end(inv, link, end, want, template_dir)))
        owners.append(rd.owns(end.interface))
        links.append(lid)
    return Intent(config, lambda header: any(o(header) for o in owners), links)


def _effective(intended, running, negate: str):
    """The intent less the negations in place because the running config lacks what they remove
    (``render.negation_in_place``); a negation the running config shows is matched as a line."""
    out = intended.deep_copy()

    def walk(want, run) -> None:
        def has(line: str) -> bool:
            return run is not None and run.get_child(equals=line) is not None

        for c in list(want.children):
            if c.children:
                walk(c, run.get_child(equals=c.text) if run is not None else None)
            elif run is not None and c.text.startswith(negate + " ") and not has(c.text) \
                    and rd.negation_in_place(c.text, has, negate):
                c.delete()

    walk(out, running)
    return out


def _owned_view(running, intended, owned):
    """The part of the running config the suite answers for: its owned stanzas whole, elsewhere only
    the lines the intent has too (everything else on the device is not the suite's business)."""
    view = HConfig(running.driver)

    def keep(src, dst, want, top: bool) -> None:
        for c in src.children:
            if top and owned(c.text):
                dst.add_deep_copy_of(c)
            elif (w := want.get_child(equals=c.text)) is not None:
                keep(c, dst.add_child(c.text), w, False)

    keep(running, view, intended, True)
    return view


def _paths(tree, platform: str) -> list[list[str]]:
    """Each leaf of a difference tree as its path (stanza headers, then the line), secrets redacted."""
    return [[redact(platform, t) for t in c.path()] for c in tree.all_children_sorted() if not c.children]


def compare(platform: str, want: Intent, running: str, saved: str) -> dict:
    """The three findings for one device, and the fix hier_config computes (the vendor's negation forms)."""
    negate = PLATFORMS[platform].negate
    run, stored = rd.hconfig(platform, running), rd.hconfig(platform, saved)
    effective = _effective(want.config, run, negate)
    view = _owned_view(run, want.config, want.owned)
    remediation = view.config_to_get_to(effective)
    return {"drift": _paths(effective.difference(view), platform),
            "unauthorised": _paths(view.difference(effective), platform),
            "unsaved": {"running_only": _paths(run.difference(stored), platform),
                        "saved_only": _paths(stored.difference(run), platform)},
            "remediation": [redact(platform, c.cisco_style_text()) for c in remediation.all_children_sorted()]}


def has_findings(rec: dict) -> bool:
    u = rec.get("unsaved") or {}
    return bool(rec.get("drift") or rec.get("unauthorised") or u.get("running_only") or u.get("saved_only"))


def check(inv: Inventory, devices: list[str], access: Access, template_dir: Path = rd.TEMPLATES) -> list[dict]:
    """One record per network device; an unreachable one (a DeviceError from the access layer) is
    reported as such and the others go on, as is one whose configuration hier_config cannot read as
    one tree; one the inventory declares no SSH access for is not read (``not_read``, with why). Intents are rendered first: a template error is bad input before any device is asked."""
    net = network_devices(inv, devices)
    intents = {d: intent(inv, d, template_dir) for d in net}
    out = []
    for d, configs, failure in read_each(access, net, lambda s: (s.show_running(), s.show_saved())):
        dev = inv.devices[d]
        rec = {"device": d, "name": dev.name or "", "site": dev.site, "platform": dev.platform, "links": intents[d].links}
        if failure:
            out.append({**rec, **failure})
            continue
        running, saved = configs
        try:
            rec.update(compare(dev.platform, intents[d], running, saved))
        except DuplicateChildError as e:
            out.append({**rec, "status": "unreadable", "error": f"its configuration is not one tree 配置无法解析: {e}"})
            continue
        out.append({**rec, "status": "findings" if has_findings(rec) else "clean"})
    return out


def fix(root: Path, inv: Inventory, records: list[dict], opts: en.Options, environ=None) -> list[dict]:
    """Re-provision, through the engine, every link of each device with drift or unauthorised lines:
    an active link as ``link provision`` does, a planned one as ``link decommission`` does (its
    interface back to unconfigured). Unsaved changes alone are not pushed over: someone made them. Each
    fix is one change of the engine's, in its own maintenance window (its devices' alerts silenced)."""
    links = sorted({lid for r in records if r.get("drift") or r.get("unauthorised") for lid in r["links"]})
    out = []
    for lid in links:
        action = "provision" if inv.links[lid].state == LinkState.active else "decommission"
        try:
            res = en.change(root, lid, action, opts, environ)
        except NetopsError as e:  # an end unreachable (nothing pushed), another run on the link: this link only
            out.append({"link": lid, "action": action, "result": "error", "ok": False, "code": e.code, "error": str(e)})
            continue
        out.append({"link": lid, "action": action, "result": res["result"], "ok": res["ok"], "change": res["change"],
                    "maintenance": res.get("maintenance"), "devices": {d: x["diff"] for d, x in res["devices"].items()}})
    return out


def run(root: Path, scope: str | None, opts: en.Options, environ=None, do_fix: bool = False) -> dict:
    """The drift report of every network device in ``scope``; with ``do_fix``, the fixes and the
    devices read again afterwards."""
    inv = load(root)
    devices = inv.scope(scope)
    tdir = en.template_dir(opts)
    with Access(inv, environ, port=opts.port) as access:
        records = check(inv, devices, access, tdir)
    result = {"scope": scope, "devices": records}
    if do_fix:
        result["fixes"] = fix(root, inv, records, opts, environ)
        inv = load(root)
        with Access(inv, environ, port=opts.port) as access:
            result["devices"] = check(inv, devices, access, tdir)
        result["before"] = records
    result["failed"] = [r["device"] for r in result["devices"] if r["status"] in ("unreachable", "unreadable")] + \
        [f["link"] for f in result.get("fixes", []) if f["result"] == "error"]
    result["code"] = status(result)
    result["ok"] = result["code"] == OK
    return result


def status(result: dict) -> int:
    """3 when a device (or a fix's link) was unreachable or unreadable, else 1 on any finding, else 0."""
    if result["failed"]:
        return PARTIAL
    return FINDINGS if any(r["status"] == "findings" for r in result["devices"]) else OK
