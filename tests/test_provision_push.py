"""The vendor path (VRP, Comware, IOS) through real netmiko against test-double SSH devices that
answer like the vendor CLI (including the verification commands, Full and not-Full), keep a running
config the pushed lines change, and record every line they receive; SNMP through a test-double
SNMPv3 agent that reports the device's interfaces. The rendered text is the real template output,
parsed by the same parser; the platform table's regexes read the vendors' own output formats."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading

import pytest
from conftest import REPO

from jinbao_netops import inventory
from jinbao_netops.inventory.model import LinkState
from jinbao_netops.topology.provision import allocate as al
from jinbao_netops.topology.provision import engine as en
from jinbao_netops.topology.provision import render as rd
from jinbao_netops.access import Access

sys.path.insert(0, str(REPO / "tests/fixtures/provision"))
from fakedevice import FakeDevice, wire
from fakesnmp import FakeSnmp

VENDORS = REPO / "tests/fixtures/provision/vendors"
STYLE = {"huawei_vrp": "vrp", "hp_comware": "comware", "cisco_ios": "ios"}
AUTH, PRIV = "authkey-fake-1", "privkey-fake-1"
UPSTREAM = ("10.44.254.1", "10.44.255.0", "GigabitEthernet0/0/0", "0.0.0.0")  # sz-r1's neighbour gd-r1


def start_config(dev) -> str:
    """The device before the change: its interfaces as the inventory has them, in the vendor's syntax."""
    out = [f"{'hostname' if dev.platform == 'cisco_ios' else 'sysname'} {dev.id}"]
    for name, itf in dev.interfaces.items():
        out.append(f"interface {name}")
        if itf.description:
            out.append(f" description {itf.description}")
        if itf.address:
            a = itf.address
            out.append(f" ip address {a.ip} {a.netmask if dev.platform == 'cisco_ios' else a.network.prefixlen}")
    return "\n".join(out) + "\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    copy = tmp_path / "vend"
    shutil.copytree(VENDORS, copy)
    monkeypatch.setenv("NETOPS_TEST_PASSWORD", "pw")
    monkeypatch.setenv("NETOPS_SNMP_AUTH_KEY", AUTH)
    monkeypatch.setenv("NETOPS_SNMP_PRIV_KEY", PRIV)
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    monkeypatch.setenv("ANSIBLE_SSH_COMMON_ARGS", f"-o UserKnownHostsFile={kh}")
    return copy, kh


@pytest.fixture
def net(env):
    """Every vendor device of the fixture as a double on its management address (one SSH port and
    one SNMP port for all, as on a real network), cabled as the inventory's planned links are."""
    copy, kh = env
    inv = inventory.load(copy)
    fakes, agents, port, snmp_port = {}, [], 0, 0
    try:
        for dev in inv.devices.values():
            if dev.platform not in STYLE:
                continue
            f = FakeDevice(dev.id, STYLE[dev.platform], start_config(dev), str(dev.loopback),
                           address=str(dev.management), port=port)
            port = f.port
            fakes[dev.id] = f
            with open(kh, "a") as fh:
                fh.write(f.known_hosts_line())
            snmp_port = snmp_port or _free_udp(str(dev.management))
            agents.append(FakeSnmp(str(dev.management), snmp_port, "netops", AUTH, PRIV, f.snmp))
        fakes["sz-r1"].static.append(UPSTREAM)
        for link in inv.links.values():
            a, b = link.a, link.b
            if a.device in fakes and b.device in fakes:
                wire(fakes[a.device], a.interface, fakes[b.device], b.interface)
        yield {"dir": copy, "fakes": fakes, "opts": lambda **kw: en.Options(port=port, snmp_port=snmp_port,
                                                                             verify_timeout=2, **kw)}
    finally:
        for x in [*fakes.values(), *agents]:
            x.close()


def _free_udp(address: str) -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- the whole flow, per vendor: push → verify → save, or → native rollback --------------------

ARM = {"vrp": re.compile(r"commit trial \d+"), "comware": re.compile(r"configuration commit delay \d+"),
       "ios": re.compile(r"configure terminal revert timer \d+")}
CONFIRM = {"vrp": "commit", "comware": "configuration commit", "ios": "configure confirm"}
SAVE = {"vrp": "save", "comware": "save force", "ios": "write memory"}
REVERT = {"vrp": "abort trial", "ios": "configure revert now"}  # Comware: the lines undone, then committed


def test_vendor_provision_two_counties_at_once_verify_and_save(net, monkeypatch):
    """Comware and IOS counties through one VRP city router, provisioned concurrently: different
    subnets; the shared router is changed by one run at a time (a native revert restores the whole
    device); each run pushes armed, verifies with the vendor's show output, confirms and saves.
    No program is started with an SNMP key in its argv (verification's snmpget once was)."""
    argvs, popen = [], subprocess.Popen.__init__

    def spy(self, args, *a, **kw):
        argvs.append([str(w) for w in (args if isinstance(args, (list, tuple)) else [args])])
        popen(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    fakes, results = net["fakes"], {}
    before = {d: f.running() for d, f in fakes.items()}

    def run(link_id):
        results[link_id] = en.change(net["dir"], link_id, "provision", net["opts"]())

    threads = [threading.Thread(target=run, args=(lid,)) for lid in ("xa-up", "xb-up")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    inv = inventory.load(net["dir"])
    assert not [a for a in argvs if any(AUTH in w or PRIV in w for w in a)]
    assert results["xa-up"]["allocation"]["subnet"] != results["xb-up"]["allocation"]["subnet"]
    for link_id, res in results.items():
        assert res["result"] == "applied", json.dumps(res.get("verification"), ensure_ascii=False, indent=1)
        # up, Full, ping, SNMP per end, and the ministry from the county: all read from vendor output
        assert len(res["verification"]) == 9 and all(c["ok"] for c in res["verification"])
        assert all("full" in c["evidence"].lower() for c in res["verification"] if "OSPF" in c["check"])
        assert inv.links[link_id].state == LinkState.active
        link = inv.links[link_id]
        for end in link.ends():
            f = fakes[end.device]
            # armed with the native safety, then confirmed and saved
            assert any(ARM[f.style].fullmatch(x) for x in f.received), f.received
            assert CONFIRM[f.style] in f.received and SAVE[f.style] in f.received
            assert f.address(end.interface) == inv.interface(end).address
            assert f.neighbour(end.interface)[2] == "Full"
            # what the device now runs, parsed back, has every line the template renders for the interface
            want = rd.parse(rd.render_end(inv, link, end, {str(e): inv.interface(e).address for e in link.ends()}))
            have = rd.parse(f.running()).find(f"interface {end.interface}")
            assert {c.line for c in want.find(f"interface {end.interface}").children} <= {c.line for c in have.children}
    for d, f in fakes.items():
        assert f.saved == f.running() != before[d]
    rec = en.history(net["dir"] / "changes")
    assert sorted(r["link"] for r in rec) == ["xa-up", "xb-up"] and all(r["verification"] for r in rec)
    # a rerun is a no-op: nothing armed, nothing pushed
    for f in fakes.values():
        f.received.clear()
    again = en.change(net["dir"], "xb-up", "provision", net["opts"]())
    assert again["result"] == "no_change", {d: x["diff"] for d, x in again["devices"].items()}
    assert not any(ARM[f.style].fullmatch(x) for f in fakes.values() for x in f.received)


def _broken_templates(tmp_path):
    """The fault: the interface never joins OSPF (the area line is dropped from every template)."""
    broken = tmp_path / "templates"
    shutil.copytree(REPO / "topology/provision/templates", broken)
    for tpl in broken.glob("*/link.j2"):
        tpl.write_text("".join(ln for ln in tpl.read_text().splitlines(True) if " area " not in ln))
    return broken


@pytest.mark.parametrize("fault, link_id, county_dev", [("no_ospf", "xa-up", "xa-r1"), ("exstart", "xb-up", "xb-r1")])
def test_vendor_failed_verification_rolls_back_natively(net, tmp_path, fault, link_id, county_dev):
    fakes = net["fakes"]
    before = {d: (fakes[d].running(), fakes[d].saved) for d in (county_dev, "sz-r1")}
    opts = net["opts"]()
    if fault == "no_ospf":
        opts.templates = _broken_templates(tmp_path)
    else:  # OSPF comes up but stays in ExStart (as with an MTU mismatch): listed, not Full
        fakes[county_dev].stuck = "ExStart"
    res = en.change(net["dir"], link_id, "provision", opts)
    assert res["result"] == "rolled_back" and not res["ok"]
    ospf = [c for c in res["verification"] if "OSPF" in c["check"]]
    assert ospf and not any(c["ok"] for c in ospf)
    if fault == "exstart":  # the neighbour is there, in its not-Full state, and the evidence shows it
        assert all(re.search(r"(?i)exstart", c["evidence"]) for c in ospf), ospf
    assert [r["identical"] for r in res["rollback"]] == [True, True]
    for dev in (county_dev, "sz-r1"):
        f = fakes[dev]
        assert (f.running(), f.saved) == before[dev]
        assert SAVE[f.style] not in f.received
        rb = next(r for r in res["rollback"] if r["device"] == dev)
        if f.style in REVERT:  # the vendor's own revert of the armed change
            assert rb["commands"] == [REVERT[f.style]] and REVERT[f.style] in f.received
        else:  # Comware: the reverse lines, then the commit that stops the delay timer
            assert rb["commands"][-1] == CONFIRM[f.style] and any(c.startswith("undo ") for c in rb["commands"])
    assert inventory.load(net["dir"]).links[link_id].state == LinkState.planned


def test_session_lost_at_confirm_rolls_back_what_it_can(net):
    """The IOS county is confirmed and saved; the VRP city router drops the session on its commit:
    the county is put back (running and saved), the city router's error is reported (its trial
    reverts by itself when the timer runs out), the link stays planned."""
    fakes = net["fakes"]
    start = fakes["xb-r1"].running()
    fakes["sz-r1"].hangup_on = "commit"
    res = en.change(net["dir"], "xb-up", "provision", net["opts"]())
    assert res["result"] == "rolled_back" and not res["ok"]
    assert res["verification"][-1]["check"].startswith("confirm and save") and not res["verification"][-1]["ok"]
    rb = {r["device"]: r for r in res["rollback"]}
    assert rb["xb-r1"]["identical"] and not rb["xb-r1"]["error"]
    assert fakes["xb-r1"].running() == fakes["xb-r1"].saved == start
    assert not rb["sz-r1"]["identical"] and "device 'sz-r1'" in rb["sz-r1"]["error"]
    assert fakes["sz-r1"].rollback_point is not None  # the trial is still armed on the device
    assert inventory.load(net["dir"]).links["xb-up"].state == LinkState.planned


def test_ctrl_c_mid_push_rolls_back_records_and_stops(net, monkeypatch):
    """Ctrl-C while the second end takes its lines: both ends are put back (the first was armed and
    changed, the second got its lines before the interrupt), the change record says so, and the
    KeyboardInterrupt goes on to the CLI (exit 130). It escaped past the DeviceError handler before,
    leaving both devices changed and nothing recorded."""
    from jinbao_netops.access import CliSession

    fakes = net["fakes"]
    before = {d: (fakes[d].running(), fakes[d].saved) for d in ("xa-r1", "sz-r1")}
    real, pushed = CliSession.configure, []

    def configure(self, commands, arm_minutes=None):
        out = real(self, commands, arm_minutes=arm_minutes)
        pushed.append(commands)
        if len(pushed) == 2:  # the second end's lines sent: Ctrl-C (Comware's reverse lines come later)
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(CliSession, "configure", configure)
    with pytest.raises(KeyboardInterrupt):
        en.change(net["dir"], "xa-up", "provision", net["opts"]())
    for dev, (running, saved) in before.items():
        assert (fakes[dev].running(), fakes[dev].saved) == (running, saved), dev
        assert SAVE[fakes[dev].style] not in fakes[dev].received
    [rec] = en.history(net["dir"] / "changes")
    assert rec["result"] == "interrupted" and rec["ok"] is False and rec["link"] == "xa-up"
    assert {r["device"]: r["identical"] for r in rec["rollback"]} == {"xa-r1": True, "sz-r1": True}
    assert inventory.load(net["dir"]).links["xa-up"].state == LinkState.planned


def test_a_line_the_device_refuses_fails_the_push_and_rolls_back(net):
    """Comware says `% Unrecognized command found at '^' position.`: the push stops there and what
    was applied is undone (Comware has no immediate native revert: the lines, then the commit)."""
    fakes = net["fakes"]
    start = {d: fakes[d].running() for d in ("xa-r1", "sz-r1")}
    fakes["xa-r1"].refuse = ("ospf network-type",)
    res = en.change(net["dir"], "xa-up", "provision", net["opts"]())
    assert res["result"] == "rolled_back"
    assert [c["check"] for c in res["verification"]] == ["push 下发"]
    assert "refused a line: % Unrecognized command found" in res["verification"][0]["evidence"]
    assert all(r["identical"] for r in res["rollback"])
    assert {d: fakes[d].running() for d in start} == start


def test_check_writes_nothing_into_the_inventory_tree(net, tmp_path):
    before = _snapshot(net["dir"])
    res = en.change(net["dir"], "xa-up", "provision", net["opts"](check=True))
    assert res["result"] == "check" and res["devices"]["xa-r1"]["diff"]
    assert all(d["backup"] is None for d in res["devices"].values())
    assert _snapshot(net["dir"]) == before and not (net["dir"] / "changes").exists()
    # backups go only where the user asks
    out = tmp_path / "report"
    res = en.change(net["dir"], "xa-up", "provision", net["opts"](check=True, changes=out))
    assert sorted(p.name.split("-", 1)[1] for p in (out / "backups").iterdir()) == ["sz-r1.cfg", "xa-r1.cfg"]
    assert _snapshot(net["dir"]) == before
    assert all(not ARM[f.style].fullmatch(x) for f in net["fakes"].values() for x in f.received)


@pytest.mark.parametrize("platform", sorted(STYLE))
def test_platform_regexes_read_the_vendor_output(platform):
    """The platform table's interface and ping regexes against the vendor's own formats: up only
    when both the port and the line protocol are up (not when shut down here or at the far end)."""
    from jinbao_netops.inventory.platforms import PLATFORMS

    plat, style = PLATFORMS[platform], STYLE[platform]
    ifn = "GigabitEthernet0/0/1"
    cfg = f"interface {ifn}\n ip address 10.9.9.0 {'255.255.255.254' if style == 'ios' else 31}\n"
    a = FakeDevice("a", style, cfg, "10.9.0.1")
    b = FakeDevice("b", style, cfg.replace("10.9.9.0", "10.9.9.1"), "10.9.0.2")
    try:
        wire(a, ifn, b, ifn)
        show = lambda: a._exec(plat.show_interface.format(name=ifn)).replace("\r\n", "\n")
        assert re.search(plat.interface_up, show()), show()
        b._itf(ifn).append("shutdown")  # the far end down: here the port is DOWN
        assert not re.search(plat.interface_up, show()), show()
        b._itf(ifn).remove("shutdown")
        a._itf(ifn).append("shutdown")  # shut down here: Administratively DOWN
        assert "dministratively" in show() and not re.search(plat.interface_up, show())
        ping = plat.ping.format(source="10.9.9.0", target="10.9.9.1")
        a._itf(ifn).remove("shutdown")
        assert re.search(plat.ping_ok, a._exec(ping))
        b._itf(ifn).append("shutdown")
        assert not re.search(plat.ping_ok, a._exec(ping)), a._exec(ping)
    finally:
        a.close()
        b.close()


# --- one device session: arming, confirm, reverse, save --------------------------------------

@pytest.mark.parametrize("link_id, device", [("xa-up", "xa-r1"), ("xa-up", "sz-r1"), ("xb-up", "xb-r1")])
def test_push_confirm_and_rollback_through_netmiko(env, link_id, device):
    copy, kh = env
    inv, alloc = al.reserve(copy, link_id)
    link = inv.links[link_id]
    end = next(e for e in link.ends() if e.device == device)
    dev = inv.devices[device]
    plat = dev.platform_info
    fake = FakeDevice(dev.id, STYLE[dev.platform], start_config(dev), str(dev.loopback))
    with open(kh, "a") as f:
        f.write(fake.known_hosts_line())
    try:
        inv.devices[device] = dev.model_copy(update={"management": "127.0.0.1"})
        s = Access(inv, port=fake.port).open(device)
        backup = s.show_running()
        assert rd.parse(backup).find(f"interface {end.interface}") is not None
        intended = rd.render_end(inv, link, end, alloc.ends)
        changes = rd.diff(rd.parse(backup), rd.parse(intended), rd.owns(end.interface), plat.negate)
        cmds = rd.commands(changes, plat.negate, plat.stanza_exit)
        fake.received.clear()
        s.configure(cmds, arm_minutes=5)
        arm = plat.commit_confirm.format(minutes=5, seconds=300)
        got = fake.received
        # the native safety is armed where the platform table says: as the config-mode command, first or last
        assert arm in got and all(c in got for c in cmds), got
        pos, lines = got.index(arm), [i for i, c in enumerate(got) if c in cmds]
        assert {"enter": pos == 0, "first": 0 < pos < min(lines), "last": pos > max(lines)}[plat.commit_confirm_at], got
        # the device's running config now has the rendered interface lines: parsed back, equal to the intent
        now = rd.parse(s.show_running())
        want = rd.parse(intended).find(f"interface {end.interface}")
        assert sorted(c.line for c in now.find(f"interface {end.interface}").children) == \
            sorted(c.line for c in want.children)
        # roll back: the reverse commands restore the backup byte for byte
        s.configure(rd.commands(changes, plat.negate, plat.stanza_exit, reverse=True))
        assert s.show_running() == backup
        fake.received.clear()
        s.confirm()
        s.save()
        assert plat.confirm in fake.received and plat.save in fake.received
        assert fake.saved.strip() == backup.replace("\r\n", "\n").strip()
        s.close()
    finally:
        fake.close()
