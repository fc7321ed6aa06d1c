"""`netops inventory reconcile`: the inventory vs what devices report. The parsers on vendor output (the
collector's fixtures' style: real layouts, and `ip -j addr` as iproute2 prints it), then the whole check
against the provisioning tests' vendor doubles (VRP, Comware, IOS over real netmiko), whose brief interface
views, OSPF and LLDP neighbours follow their modelled state: a cable removed, one added that the inventory
does not have, a port shut down, an address changed, a planned link, a device nobody answers on."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from conftest import REPO

from jinbao_netops.cli import main
from jinbao_netops.collectors.parsers import PARSERS
from jinbao_netops.errors import FINDINGS, OK, PARTIAL
from jinbao_netops.inventory.platforms import PLATFORMS
from jinbao_netops.topology import reconcile as rc
import test_provision_push as push
from fakedevice import wire
import test_collect_snmpd as interop

env, net = push.env, push.net  # the vendor doubles' fixtures, used as they are
snmpd = interop.snmpd  # Debian's own snmpd on a loopback port, as the lab's FRR routers run it
FIXTURES = REPO / "tests/fixtures/collect"


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text()


# --- parsers, per platform ---------------------------------------------------------------------------

def test_frr_interfaces_from_ip_json():
    """`ip -j addr`: the UP flag is the admin state, operstate the line (a veth whose peer is down is
    LOWERLAYERDOWN; the loopback's UNKNOWN with LOWER_UP is up); IPv4 addresses with their prefix."""
    rec = rc.parse(PLATFORMS["frr"], {"ip -j addr": fixture("frr_ip_addr")})
    itf = rec["interfaces"]
    assert (itf["eth1"]["admin_up"], itf["eth1"]["oper_up"], itf["eth1"]["addresses"]) == (True, True, ["10.0.255.1/31"])
    assert (itf["eth2"]["admin_up"], itf["eth2"]["oper_up"]) == (True, False)
    assert (itf["eth3"]["admin_up"], itf["eth3"]["oper_up"], itf["eth3"]["addresses"]) == (False, False, [])
    assert itf["lo"]["oper_up"] and "10.44.254.1/32" in itf["lo"]["addresses"]
    assert rec["lldp"] is None  # lldpcli not asked: no LLDP evidence


def test_lldpd_json0():
    rows = PARSERS["lldp_lldpd"](fixture("frr_lldpcli_json0_neighbors"))["lldp_neighbors"]
    assert rows == [{"interface": "eth1", "system": "bu-r1", "port": "eth1"},
                    {"interface": "eth2", "system": "sz-r1", "port": "GigabitEthernet0/0/0"}]
    assert PARSERS["lldp_lldpd"]('{"lldp": [{}]}') == {"lldp_neighbors": []}   # running, nobody seen
    assert PARSERS["lldp_lldpd"]("-bash: lldpcli: command not found\n") == {}   # no LLDP here


@pytest.mark.parametrize("platform, brief, lldp", [
    ("huawei_vrp", "huawei_vrp_display_ip_interface_brief", "huawei_vrp_display_lldp_neighbor_brief"),
    ("hp_comware", "hp_comware_display_ip_interface_brief", "hp_comware_display_lldp_neighbor_information_list"),
    ("cisco_ios", "cisco_ios_show_ip_interface_brief", "cisco_ios_show_lldp_neighbors")])
def test_vendor_brief_views_and_lldp(platform, brief, lldp):
    """Each vendor's layout: names abbreviated by the device come back in full, `*down` / administratively
    down is shut down, an unassigned interface has no address; LLDP's local port in full, the far end's as sent."""
    plat = PLATFORMS[platform]
    cmds = {c: "" for c, _ in plat.reconcile}
    brief_cmd, _, lldp_cmd = (c for c, _ in plat.reconcile)
    rec = rc.parse(plat, {**cmds, brief_cmd: fixture(brief), lldp_cmd: fixture(lldp)})
    up, shut = {"huawei_vrp": ("GigabitEthernet0/0/0", "GigabitEthernet0/0/3"),
                "hp_comware": ("GigabitEthernet1/0/1", "GigabitEthernet1/0/3"),
                "cisco_ios": ("GigabitEthernet0/1", "GigabitEthernet0/3")}[platform]
    assert rec["interfaces"][up]["admin_up"] and rec["interfaces"][up]["oper_up"]
    assert rec["interfaces"][up]["addresses"] and "/" in rec["interfaces"][up]["addresses"][0] or platform == "cisco_ios"
    assert not rec["interfaces"][shut]["admin_up"] and rec["interfaces"][shut]["addresses"] == []
    assert rec["lldp"] and rec["lldp"][0]["interface"] == up and rec["lldp"][0]["system"] == "peer-r1"
    assert rc.parse(plat, {**cmds, brief_cmd: fixture(brief), lldp_cmd: "Info: Global LLDP is not enabled.\n"})["lldp"] is None


def test_no_interface_table_is_unreadable_not_clean():
    with pytest.raises(ValueError, match="no interface table"):
        rc.parse(PLATFORMS["huawei_vrp"], {"display ip interface brief": "Error: Unrecognized command found at '^' position."})


# --- the comparison against the vendor doubles -----------------------------------------------------------

ADDR = {"xa-up": {"sz-r1:GigabitEthernet0/0/1": "10.44.255.2/31", "xa-r1:GigabitEthernet1/0/1": "10.44.255.3/31"},
        "xb-up": {"sz-r1:GigabitEthernet0/0/2": "10.44.255.4/31", "xb-r1:GigabitEthernet0/1": "10.44.255.5/31"}}
OSPF_LINE = {"vrp": "ospf enable 1 area 0.0.0.0", "comware": "ospf 1 area 0.0.0.0", "ios": "ip ospf 1 area 0"}


def edit_inventory(root, change) -> None:
    path = root / "inventory.yml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def set_address(fake, interface: str, address: str) -> None:
    import ipaddress

    a = ipaddress.IPv4Interface(address)
    lines = fake._itf(interface)
    lines[:] = [x for x in lines if not x.startswith("ip address ")]
    lines.append(f"ip address {a.ip} {a.netmask if fake.style == 'ios' else a.network.prefixlen}")


@pytest.fixture
def live(net):
    """xa-up and xb-up in service (active in the inventory, addressed and in OSPF on the doubles); the
    city's upstream link (to a router that is no double here) planned, so the devices agree with the model."""
    fakes = net["fakes"]

    def change(doc):
        for lid, ends in ADDR.items():
            doc["links"][lid]["state"] = "active"
            for end, addr in ends.items():
                dev, itf = end.split(":", 1)
                doc["devices"][dev]["interfaces"][itf]["address"] = addr
        doc["links"]["gd-sz"]["state"] = "planned"

    edit_inventory(net["dir"], change)
    for ends in ADDR.values():
        for end, addr in ends.items():
            dev, itf = end.split(":", 1)
            set_address(fakes[dev], itf, addr)
            fakes[dev]._itf(itf).append(OSPF_LINE[fakes[dev].style])
    fakes["sz-r1"].static.clear()
    return net


SCOPE = ["sz-r1", "xa-r1", "xb-r1"]


def reconcile(net, devices=SCOPE) -> dict:
    from jinbao_netops import inventory
    from jinbao_netops.access import Access

    inv = inventory.load(net["dir"])
    with Access(inv, port=net["opts"]().port) as access:
        recs, report = rc.check(inv, devices, access)
    return {"devices": {r["device"]: r for r in recs}, "differences": report.differences, "info": report.info}


def kinds(res: dict) -> set[tuple[str, str, str]]:
    return {(d["object"], d["field"], d["kind"]) for d in res["differences"]}


def test_devices_that_match_the_inventory_have_no_differences(live):
    """VRP, Comware and IOS read; OSPF Full and LLDP on both active links; the planned upstream link is a
    note, not a difference."""
    res = reconcile(live)
    assert res["differences"] == [], [rc.line(d) for d in res["differences"]]
    assert all(r["status"] == "read" and r["lldp"] for r in res["devices"].values())
    assert res["devices"]["sz-r1"]["ospf_neighbors"] == 2
    assert {(i["object"], i["kind"]) for i in res["info"]} >= {("link 'gd-sz'", "planned"), ("link 'xc-up'", "planned")}


def test_a_removed_and_an_added_cable_are_both_found(live):
    """The issue's scenario: the xb-up cable pulled (both ends down), a cable between xa-r1 and xb-r1 that the
    inventory does not have (LLDP on both ends); each one line naming the file and object to edit."""
    fakes = live["fakes"]
    del fakes["xb-r1"].wires["GigabitEthernet0/1"], fakes["sz-r1"].wires["GigabitEthernet0/0/2"]
    fakes["xa-r1"].config.append(["interface GigabitEthernet1/0/2", []])
    fakes["xb-r1"].config.append(["interface GigabitEthernet0/2", []])
    wire(fakes["xa-r1"], "GigabitEthernet1/0/2", fakes["xb-r1"], "GigabitEthernet0/2")
    res = reconcile(live)
    assert kinds(res) == {("link 'xb-up'", "a", "down"), ("link 'xb-up'", "b", "down"),
                          ("device 'xa-r1'", "interfaces.GigabitEthernet1/0/2", "not_in_inventory"),
                          ("device 'xb-r1'", "interfaces.GigabitEthernet0/2", "not_in_inventory")}
    extra = next(d for d in res["differences"] if d["object"] == "device 'xa-r1'")
    assert extra["network"] == "LLDP xb-r1:GigabitEthernet0/2"
    assert rc.line(extra).startswith(f"{live['dir'] / 'inventory.yml'}:")  # file:line of the device's entry
    assert "cabled" in rc.line(extra) and "已布线" in rc.line(extra)


def test_shut_down_port_wrong_address_missing_interface(live):
    fakes = live["fakes"]
    fakes["xb-r1"]._itf("GigabitEthernet0/1").append("shutdown")
    set_address(fakes["xa-r1"], "GigabitEthernet1/0/1", "10.44.255.9/31")
    fakes["sz-r1"].config[:] = [st for st in fakes["sz-r1"].config if st[0] != "interface GigabitEthernet0/0/3"]
    res = reconcile(live)
    assert kinds(res) == {
        ("link 'xb-up'", "a", "shutdown"), ("link 'xb-up'", "b", "down"),
        ("device 'xa-r1'", "interfaces.GigabitEthernet1/0/1.address", "address"),
        ("link 'xa-up'", "(object)", "no_ospf"),  # another subnet: no adjacency either
        ("device 'sz-r1'", "interfaces.GigabitEthernet0/0/3", "missing")}
    addr = next(d for d in res["differences"] if d["kind"] == "address")
    assert addr["network"] == "10.44.255.9/31" and "10.44.255.3/31" in addr["message"]


def test_miscabled_port_and_lldp_only_where_both_ends_run_it(live):
    """xb-r1 cabled to sz-r1's third port instead of its second: LLDP names the port it sees. Where a device
    runs no LLDP, its links are not judged by LLDP."""
    fakes = live["fakes"]
    sz, xb = fakes["sz-r1"], fakes["xb-r1"]
    del sz.wires["GigabitEthernet0/0/2"]
    wire(xb, "GigabitEthernet0/1", sz, "GigabitEthernet0/0/3")
    res = reconcile(live, ["sz-r1", "xb-r1"])
    assert kinds(res) == {("link 'xb-up'", "a", "lldp_other"), ("link 'xb-up'", "b", "down")}
    other = next(d for d in res["differences"] if d["kind"] == "lldp_other")
    assert other["network"] == "LLDP sz-r1:GigabitEthernet0/0/3"
    wire(xb, "GigabitEthernet0/1", sz, "GigabitEthernet0/0/2")
    xb.lldp = False
    res = reconcile(live, ["sz-r1", "xb-r1"])
    assert res["differences"] == [] and res["devices"]["xb-r1"]["lldp"] is False


def test_unreachable_device_reported_and_the_others_read(live):
    """xc-r1 (FRR) has no double: unreachable, named; the other devices are still compared."""
    out = rc.run(live["dir"], "sz", port=live["opts"]().port)
    assert out["failed"] == ["xc-r1"] and out["code"] == PARTIAL
    by = {r["device"]: r for r in out["devices"]}
    assert by["xc-r1"]["status"] == "unreachable" and by["xc-r1"]["error"]
    assert by["sz-r1"]["status"] == "read" and out["differences"] == []
    assert out["summary"] == {"differences": 0, "info": len(out["info"]), "devices": 4, "failed": 1}


def test_cli_json_document_and_exit_status(live, capsys, monkeypatch):
    """--json: the structured list (file, object, field, kind, message, network), summary.differences (the
    schedule's findings), exit 1 on differences and 0 when none; device text stays data in the text view."""
    fakes = live["fakes"]
    monkeypatch.setattr(rc, "Access", _on_port(live["opts"]().port))
    assert main(["--json", "inventory", "reconcile", "-i", str(live["dir"]), "--scope", "xa-r1"]) == OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["summary"]["differences"] == 0
    fakes["xa-r1"].hostname = "evil[/]\x1b[31m"  # what LLDP on sz-r1 now reports as its neighbour's name
    assert main(["--json", "inventory", "reconcile", "-i", str(live["dir"]), "--scope", "sz-r1"]) == FINDINGS
    doc = json.loads(capsys.readouterr().out)
    [d] = doc["differences"]
    assert set(d) == {"file", "object", "field", "kind", "message", "network"} and d["kind"] == "lldp_other"
    assert doc["summary"]["differences"] == 1 and doc["code"] == FINDINGS
    assert main(["inventory", "reconcile", "-i", str(live["dir"]), "--scope", "sz-r1"]) == FINDINGS
    text = capsys.readouterr().out
    assert "\x1b" not in text and "evil[/]" in text


def _on_port(port):
    from jinbao_netops.access import Access

    return lambda inv, environ=None, **kw: Access(inv, environ, port=port)


def test_comware_point_to_point_peer_state():
    """Comware prints a point-to-point neighbour's state as "Full/ -" (no DR): Full, on its interface (the
    parser once read "Full/" and "-" as two columns and dropped the row)."""
    text = (" Area: 0.0.0.0\n Router ID       Address         Pri Dead-Time  State             Interface\n"
            " 10.44.254.2     10.44.255.2     1   3          Full/ -           GE1/0/1\n")
    assert PARSERS["ospf_comware"](text)["ospf_neighbors"] == [
        {"neighbor_id": "10.44.254.2", "state": "full", "interface": "GE1/0/1", "full": True}]


# --- serials and software versions over SNMP -------------------------------------------------------------

REC = REPO / "tests/fixtures/snmp"
ENTITY = "1.3.6.1.2.1.47.1.1.1.1"  # ENTITY-MIB entPhysicalEntry


def sys_descr(recording: str) -> str:
    """The sysDescr a vendor recording answers (VRP's several lines are recorded as hex)."""
    line = next(x for x in (REC / f"{recording}.snmprec").read_text().splitlines() if x.startswith("1.3.6.1.2.1.1.1.0|"))
    _, tag, value = line.split("|", 2)
    return bytes.fromhex(value).decode() if tag == "4x" else value


@pytest.mark.parametrize("platform, descr, version", [
    ("huawei_vrp", sys_descr("huawei-ce6881"), "V200R019C10SPC800"),      # VRP8, several lines
    ("huawei_vrp", sys_descr("huawei-s5720"), "V200R011C10SPC500"),       # VRP5: "software,Version"
    ("huawei_vrp", sys_descr("huawei-ar6280"), "V300R019C10SPC300"),
    ("huawei_vrp", "Huawei YunShan OS\r\nVersion 1.24.0.1 (S6700 V600R024C00SPC100)\r\nCopyright (C) 2021-2024 Huawei "
                   "Technologies Co., Ltd.\r\nHUAWEI S6700-48-EI", "V600R024C00SPC100"),
    ("hp_comware", sys_descr("h3c-s6520"), "7.1.070 Release 6530P02"),
    ("hp_comware", sys_descr("h3c-msr3620-v5"), "5.20.106 Release 2516P01"),
    ("hp_comware", "H3C Comware Platform Software, Software Version 7.1.070, Release 6728P22\r\nH3C S6520X-30QC-EI\r\n"
                   "Copyright (c) 2004-2021 New H3C Technologies Co., Ltd. All rights reserved.", "7.1.070 Release 6728P22"),
    ("cisco_ios", sys_descr("cisco-c2960x"), "15.2(7)E3"),
    ("cisco_ios", sys_descr("cisco-c9300"), "17.3.4"),                    # IOS-XE
    ("cisco_asa", "Cisco Adaptive Security Appliance Version 9.12(4)22", "9.12(4)22"),
    ("frr", "Linux xa-r1 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) x86_64", "6.1.0-28-amd64"),
    ("frr", "", None), ("huawei_vrp", sys_descr("h3c-s6520"), None), ("hp_comware", "H3C Comware Software", None)])
def test_software_version_from_sys_descr(platform, descr, version):
    """Each platform's sysDescr in its own form, the version in the form the inventory writes; a sysDescr in
    another form names none (not compared, rather than compared wrongly)."""
    assert PLATFORMS[platform].software_version(descr) == version


def test_serial_and_software_are_checked_free_text(tmp_path):
    """Both fields are plain text (a control character is refused, naming the file, device and field); a serial
    is one text or a stack's list; only network devices carry them."""
    from jinbao_netops import inventory

    root = tmp_path / "inv"
    shutil.copytree(push.VENDORS, root)

    def problems(**fields) -> list[str]:
        edit_inventory(root, lambda doc: doc["devices"]["xa-r1"].update(fields))
        try:
            inventory.load(root)
        except inventory.InventoryError as e:
            return e.problems
        return []

    assert problems(serial="210235A1U5H17B000011", software="7.1.070 Release 6530P02") == []
    assert inventory.load(root).devices["xa-r1"].serial == ["210235A1U5H17B000011"]
    assert problems(serial=["210235A1U5H17B000011", "210235A1U5H17B000012"]) == []
    [line] = problems(serial="210235A1U5H17B000011\nundo sysname")
    assert line.startswith(f"{root / 'inventory.yml'}:") and "device 'xa-r1': field 'serial.0':" in line
    assert "U+000A is not allowed" in line
    [line] = problems(serial="210235A1U5H17B000011", software="7.1.070\x1b[2J")
    assert "device 'xa-r1': field 'software':" in line and "U+001B" in line
    [line] = problems(software="7.1.070 Release 6530P02", serial=["A1", "a1"])
    assert "field 'serial': a serial number is listed twice" in line
    default = tmp_path / "default"
    shutil.copytree(inventory.DEFAULT_INVENTORY, default)
    f = default / "guangdong.yml"
    f.write_text(f.read_text().replace("    platform: debian\n", "    platform: debian\n    serial: CZ1234\n", 1))
    with pytest.raises(inventory.InventoryError) as e:
        inventory.load(default)
    [line] = e.value.problems
    assert "field 'serial': compared on network devices only, not on platform debian" in line


def entities(*rows) -> dict:
    """ENTITY-MIB rows as a recording's extra OIDs: (entPhysicalIndex, entPhysicalDescr, entPhysicalClass,
    entPhysicalSerialNum)."""
    out = {}
    for i, descr, cls, serial in rows:
        out |= {f"{ENTITY}.2.{i}": ("4", descr), f"{ENTITY}.5.{i}": ("2", cls), f"{ENTITY}.11.{i}": ("4", serial)}
    return out


# what the doubles report: a CE6881 (its chassis, a board and a fan), a two-member IRF stack of S6520s, a
# stack of one 2960-X (Cisco's stack entity, class stack(11), carries no serial; its member is the chassis)
SNMP = {
    "sz-r1": ("huawei-ce6881", entities((16777216, "CE6881-48S6CQ", 3, "2102351931P0K3000123"),
                                        (16842753, "CE6881-48S6CQ board", 9, "021VGY10K3000456"),
                                        (16908289, "FAN1", 7, ""))),
    "xa-r1": ("h3c-s6520", entities((1, "H3C S6520-26Q-SI", 3, "210235A1U5H17B000011"), (2, "Slot 1", 9, ""),
                                    (101, "H3C S6520-26Q-SI", 3, "210235A1U5H17B000012"))),
    "xb-r1": ("cisco-c2960x", entities((1, "c29xx Stack", 11, ""), (1001, "WS-C2960X-48TS-L", 3, "FOC1934X0AB"),
                                       (1002, "Switch 1 - Power Supply A", 6, ""))),
}
EXPECT = {"sz-r1": {"serial": "2102351931P0K3000123", "software": "V200R019C10SPC800"},
          "xa-r1": {"serial": ["210235A1U5H17B000012", "210235a1u5h17b000011"], "software": "7.1.070 Release 6530P02"},
          "xb-r1": {"serial": "FOC1934X0AB", "software": "15.2(7)E3"}}


@pytest.fixture
def snmp(live, tmp_path):
    """The vendor recordings (sysDescr as the vendors send it) with their chassis entities, answered over SNMPv3
    authPriv on each double's management address, on the port the inventory names; the model expects what they
    report."""
    from jinbao_netops import inventory
    from jinbao_netops.testing.simagent import Agent, FastResponder

    inv = inventory.load(live["dir"])
    port = push._free_udp(str(inv.devices["sz-r1"].management))
    agents = [Agent(d, str(inv.devices[d].management), port, recording=str(REC / f"{rec}.snmprec"), extra=extra)
              for d, (rec, extra) in SNMP.items()]

    def change(doc):
        for d, fields in EXPECT.items():
            doc["devices"][d].update(snmp_port=port, **fields)

    edit_inventory(live["dir"], change)
    with FastResponder(agents, auth_key=push.AUTH, priv_key=push.PRIV, workdir=str(tmp_path / "sim")):
        yield live


def test_serials_and_versions_that_match_are_no_difference(snmp):
    """Case aside, and a stack's serials in any order, what the devices report is what the model says."""
    res = reconcile(snmp)
    assert res["differences"] == [], [rc.line(d) for d in res["differences"]]
    got = {d: r["snmp"] for d, r in res["devices"].items()}
    assert got["sz-r1"] == {"status": "read", "software": "V200R019C10SPC800", "serials": ["2102351931P0K3000123"],
                            "sys_descr": " ".join(sys_descr("huawei-ce6881").split())}
    assert got["xa-r1"]["serials"] == ["210235A1U5H17B000011", "210235A1U5H17B000012"]  # every chassis of the stack
    assert got["xb-r1"]["serials"] == ["FOC1934X0AB"] and got["xb-r1"]["software"] == "15.2(7)E3"


def test_a_wrong_serial_or_version_is_one_line_each(snmp):
    """A router replaced by another of its model (another serial), another release than the model's, a stack
    member the model does not list: each one line naming the file, the device and the field, expected and seen."""
    def change(doc):
        doc["devices"]["sz-r1"]["serial"] = "2102351931P0K3000999"
        doc["devices"]["xb-r1"]["software"] = "15.2(4)E10"
        doc["devices"]["xa-r1"]["serial"] = ["210235A1U5H17B000011"]

    edit_inventory(snmp["dir"], change)
    res = reconcile(snmp)
    assert kinds(res) == {("device 'sz-r1'", "serial", "serial"), ("device 'xb-r1'", "software", "software"),
                          ("device 'xa-r1'", "serial", "serial")}
    by = {d["object"]: d for d in res["differences"]}
    assert by["device 'xb-r1'"]["network"] == "15.2(7)E3" and "not 15.2(4)E10" in by["device 'xb-r1'"]["message"]
    assert by["device 'xa-r1'"]["network"] == "210235A1U5H17B000011, 210235A1U5H17B000012"
    line = rc.line(by["device 'sz-r1'"])
    assert line.startswith(f"{snmp['dir'] / 'inventory.yml'}:") and "field 'serial'" in line
    assert "2102351931P0K3000123" in line and "2102351931P0K3000999" in line and "序列号不符" in line


def test_an_unreachable_agent_is_one_failure_and_an_unset_device_is_not_asked(snmp, monkeypatch):
    """xb-r1's agent does not answer (another port): that device is not read over SNMP (exit 3, the others still
    compared); a device whose model names neither field is not asked at all."""
    def change(doc):
        doc["devices"]["xb-r1"].update(snmp_port=push._free_udp("127.0.0.14"), snmp_timeout=0.3, snmp_retries=0)
        doc["devices"]["xb-r1"]["software"] = "15.2(4)E10"  # not compared: nothing to compare with
        doc["devices"]["sz-r1"].pop("serial")
        doc["devices"]["sz-r1"].pop("software")

    edit_inventory(snmp["dir"], change)
    out = rc.run(snmp["dir"], "sz", port=snmp["opts"]().port)
    by = {r["device"]: r for r in out["devices"]}
    assert by["xb-r1"]["status"] == "read" and by["xb-r1"]["snmp"]["status"] == "unreachable"
    assert by["xb-r1"]["snmp"]["error"].startswith("SNMP: no response")
    assert "snmp" not in by["sz-r1"] and by["xa-r1"]["snmp"]["status"] == "read"
    assert set(out["failed"]) == {"xb-r1", "xc-r1"} and out["code"] == PARTIAL  # xc-r1: no SSH double
    assert [d for d in out["differences"] if d["field"] in ("serial", "software")] == []

    from jinbao_netops import inventory

    monkeypatch.setattr(rc, "Poller", lambda **kw: pytest.fail("a device without serial or software was asked"))
    assert rc.identities(inventory.load(snmp["dir"]), ["sz-r1"]) == {}


def test_cli_json_and_text_name_the_difference(snmp, capsys, monkeypatch):
    monkeypatch.setattr(rc, "Access", _on_port(snmp["opts"]().port))
    edit_inventory(snmp["dir"], lambda doc: doc["devices"]["xa-r1"].update(software="7.1.070 Release 6728P22"))
    args = ["inventory", "reconcile", "-i", str(snmp["dir"]), "--scope", "xa-r1"]
    assert main(["--json", *args]) == FINDINGS
    doc = json.loads(capsys.readouterr().out)
    [d] = doc["differences"]
    assert (d["object"], d["field"], d["kind"], d["network"]) == ("device 'xa-r1'", "software", "software",
                                                                   "7.1.070 Release 6530P02")
    assert doc["devices"][0]["snmp"]["status"] == "read" and doc["summary"]["differences"] == 1
    assert main(args) == FINDINGS
    text = capsys.readouterr().out
    assert "field 'software': the device runs 7.1.070 Release 6530P02, not 7.1.070 Release 6728P22" in text


def test_a_device_without_snmp_access_is_a_note(env, monkeypatch):
    """A model that names a serial for a device the suite may not poll (access: [ssh]): a note per field."""
    from jinbao_netops import inventory

    root, _ = env
    edit_inventory(root, lambda doc: doc["devices"]["xa-r1"].update(access=["ssh"], serial="210235A1U5H17B000011",
                                                                   software="7.1.070 Release 6530P02"))
    monkeypatch.setattr(rc, "Poller", lambda **kw: pytest.fail("a device without SNMP access was asked"))
    inv = inventory.load(root)
    got = rc.identities(inv, ["xa-r1", "xb-r1"])
    assert list(got) == ["xa-r1"] and got["xa-r1"]["status"] == "not_read"
    r = rc.compare(inv, {}, got)
    assert r.differences == [] and {(i["field"], i["kind"]) for i in r.info} == {("serial", "not_compared"),
                                                                                ("software", "not_compared")}


def test_net_snmp_reports_the_kernel_and_no_serial(snmpd, env, monkeypatch):
    """xc-r1 (FRR) polled through Debian's own snmpd: its software is this host's kernel release, read from the
    real sysDescr; a serial in the model is a note (net-snmp reports none), not a difference; another release
    is one."""
    from jinbao_netops import inventory

    root, _ = env
    monkeypatch.setenv("NETOPS_INTEROP_AUTH", interop.AUTH_KEY)
    monkeypatch.setenv("NETOPS_INTEROP_PRIV", interop.PRIV_KEY)

    def change(doc, software=os.uname().release):
        doc["credentials"]["interop"] = {"username": "netops", "password": {"env": "NETOPS_TEST_PASSWORD"},
                                         "snmp": {"user": "u-sha-aes", "auth_key": {"env": "NETOPS_INTEROP_AUTH"},
                                                  "priv_key": {"env": "NETOPS_INTEROP_PRIV"}}}
        doc["devices"]["xc-r1"].update(management=interop.ADDRESS, snmp_port=snmpd, credentials="interop",
                                       serial="VMW-4C4C4544", software=software)

    edit_inventory(root, change)
    inv = inventory.load(root)
    got = rc.identities(inv, ["xc-r1"])["xc-r1"]
    assert got["status"] == "read" and got["software"] == os.uname().release and got["serials"] == []
    r = rc.compare(inv, {}, {"xc-r1": got})
    assert r.differences == []
    assert {(i["field"], i["kind"]) for i in r.info} == {("serial", "not_compared")}
    edit_inventory(root, lambda doc: change(doc, "6.1.0-9-amd64"))
    r = rc.compare(inventory.load(root), {}, {"xc-r1": got})
    assert [(d["field"], d["kind"], d["network"]) for d in r.differences] == [("software", "software", os.uname().release)]
