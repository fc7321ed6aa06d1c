"""`netops inventory reconcile`: the inventory vs what devices report. The parsers on vendor output (the
collector's fixtures' style: real layouts, and `ip -j addr` as iproute2 prints it), then the whole check
against the provisioning tests' vendor doubles (VRP, Comware, IOS over real netmiko), whose brief interface
views, OSPF and LLDP neighbours follow their modelled state: a cable removed, one added that the inventory
does not have, a port shut down, an address changed, a planned link, a device nobody answers on."""
from __future__ import annotations

import json

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

env, net = push.env, push.net  # the vendor doubles' fixtures, used as they are
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
