"""Security zones in the inventory: an inventory without zones is all 业务专网 (business); only boundary
devices (firewall, 网闸 gap_gateway) have interfaces in two zones; a link or a subnet between zones is
an error naming it; the zone policy's references resolve. (The broken fixtures for the three
acceptance cases are in tests/fixtures/broken, run by test_inventory_validate.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from jinbao_netops.inventory import DEFAULT_INVENTORY, InventoryError, load
from jinbao_netops.inventory.model import Zone

ZONED = Path(__file__).parent / "fixtures" / "zones" / "inventory.yml"


def test_an_inventory_without_zones_is_all_business():
    inv = load(Path(__file__).parent / "fixtures" / "broken" / "base.yml")
    assert not inv.zone_policy
    assert {d.interface_zone(n) for d in inv.devices.values() for n in d.interfaces} == {Zone.business}
    assert not any(d.boundary for d in inv.devices.values())


def test_the_default_gives_each_province_its_internet_segment_behind_a_firewall():
    inv = load(DEFAULT_INVENTORY)
    assert sorted(d.id for d in inv.devices.values() if d.boundary) == ["gd-fw1", "sc-gap1"]
    assert inv.devices["sc-gap1"].role.value == "gap_gateway"
    assert {d.id for d in inv.devices.values() if d.zone == Zone.internet} == {"gd-web1", "sc-web1"}
    assert inv.devices["gd-fw1"].interface_zone("eth1") == Zone.internet
    assert inv.zone_policy["gd-12333-query"].to.devices == ["gd-db1", "gd-dr-db1"]


def test_the_zoned_fixture_loads_with_its_boundaries_and_policy():
    inv = load(ZONED)
    assert sorted(d.id for d in inv.devices.values() if d.boundary) == ["gd-fw1", "gd-gap1"]
    fw = inv.devices["gd-fw1"]
    assert fw.zone == Zone.dmz and fw.interface_zone("GigabitEthernet1/0/1") == Zone.internet
    assert inv.devices["gd-web1"].zone == Zone.internet
    assert sorted(inv.zone_policy) == ["ops-ping", "portal-query", "qz-sync"]
    assert inv.zone_policy["qz-sync"].from_.zone == Zone.dmz and inv.zone_policy["qz-sync"].via == ["gd-gap1"]


def _broken(tmp_path, old: str, new: str) -> list[str]:
    text = ZONED.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    f = tmp_path / "inventory.yml"
    f.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(InventoryError) as e:
        load(f)
    assert all(p.startswith(f"{f}:") for p in e.value.problems), e.value.problems
    return [p.split(": ", 1)[1] for p in e.value.problems]


def test_a_boundary_device_faces_each_zone_with_an_interface_of_that_zone(tmp_path):
    """The firewall's 外网 port declared in the DMZ: the link to the 12333 server joins two zones on
    the firewall's side, and that is the one line."""
    assert _broken(tmp_path, "GigabitEthernet1/0/1: {address: 10.44.3.1/24, zone: internet, description: 外网}",
                   "GigabitEthernet1/0/1: {address: 10.44.3.1/24, description: 外网}") == [
        "link 'gd-web1-lan': field 'b': joins zone internet (gd-web1:eth0) and zone dmz "
        "(gd-fw1:GigabitEthernet1/0/1): a boundary device's interface is in the zone of what it faces "
        "边界设备接口应属于对端所在安全区"]


def test_a_subnet_is_in_one_zone_even_without_a_link(tmp_path):
    assert _broken(tmp_path, "      eth0: {address: 10.44.4.10/24}\n",
                   "      eth0: {address: 10.44.4.10/24}\n      eth1: {address: 10.44.3.11/24}\n") == [
        "device 'gd-qz1': field 'interfaces.eth1.zone': dmz, but subnet 10.44.3.0/24 is in zone internet "
        "(gd-fw1:GigabitEthernet1/0/1): a subnet is in exactly one zone 子网只属于一个安全区"]


@pytest.mark.parametrize("old, new, want", [
    ("    via: [gd-gap1]\n", "    via: [gd-gap9]\n", "flow 'qz-sync': field 'via.0': unknown device 'gd-gap9'"),
    ("    via: [gd-gap1]\n", "    via: [gd-r1]\n",
     "flow 'qz-sync': field 'via.0': device 'gd-r1' is a router, not a boundary device (firewall or gap_gateway)"),
    ("    to: {zone: dmz, role: server}\n    protocol: tcp\n", "    to: {zone: dmz, site: guangxi}\n    protocol: tcp\n",
     "flow 'portal-query': field 'to.site': unknown site 'guangxi'"),
    ("    to: {zone: dmz, role: server}\n    protocol: tcp\n", "    to: {zone: internet}\n    protocol: tcp\n",
     "flow 'portal-query': field 'to.zone': the flow stays in zone internet; a flow crosses a boundary"),
    ("    protocol: icmp\n", "    protocol: icmp\n    ports: [7]\n",
     "flow 'ops-ping': field 'ports': give destination ports for tcp and udp, none for icmp"),
    ("    ports: [8443]\n", "    ports: [8443]\n    description2: x\n", "flow 'portal-query': field 'description2': unknown field"),
])
def test_policy_references_resolve(tmp_path, old, new, want):
    assert _broken(tmp_path, old, new) == [want]


def test_all_zone_problems_at_once(tmp_path):
    text = ZONED.read_text(encoding="utf-8").replace("    via: [gd-gap1]\n", "    via: [gd-gap9]\n").replace(
        "      eth0: {address: 10.44.4.10/24}\n", "      eth0: {address: 10.44.4.10/24}\n      eth1: {address: 10.44.5.1/24, zone: business}\n")
    f = tmp_path / "inventory.yml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as e:
        load(f)
    assert len(e.value.problems) == 2 and "via.0" in e.value.problems[1] and "interfaces.eth1.zone" in e.value.problems[0]
