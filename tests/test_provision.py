"""Link provisioning without a lab: allocation, inventory edits, locks, rendering, diff, errors."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, clean_env
from golden.regenerate import PROVISION_LINKS, VENDORS, provision_golden, render_link

from jinbao_netops import inventory
from jinbao_netops.inventory.model import LinkState
from jinbao_netops.errors import UsageError
from jinbao_netops.lab.plan import build
from jinbao_netops.topology.provision import allocate as al
from jinbao_netops.topology.provision import render as rd



@pytest.fixture
def default_copy(tmp_path):
    d = tmp_path / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, d)
    return d


@pytest.fixture
def vendors_copy(tmp_path):
    d = tmp_path / "vend"
    shutil.copytree(VENDORS, d)
    return d


def test_allocation_takes_the_first_free_31_city_end_even(default_copy):
    inv, a = al.reserve(default_copy, "longgang-up2")
    assert str(a.subnet) == "10.44.255.22/31" and a.new and a.pool == "guangdong 10.44.255.0/24"
    assert {k: str(v) for k, v in a.ends.items()} == {"guangzhou-r1:eth6": "10.44.255.22/31",
                                                      "longgang-r1:eth2": "10.44.255.23/31"}
    assert inv.links["longgang-up2"].state == LinkState.planned  # reserved, not yet active


def test_allocation_is_idempotent_by_link_id(default_copy):
    _, first = al.reserve(default_copy, "longgang-up2")
    _, again = al.reserve(default_copy, "longgang-up2")
    assert again.subnet == first.subnet and again.ends == first.ends and not again.new


def test_inventory_edit_keeps_comments_and_order(default_copy):
    before = (default_copy / "guangdong.yml").read_text(encoding="utf-8").splitlines()
    with al.locked(default_copy):
        al.record_link(default_copy, "longgang-up2", {"guangzhou-r1:eth6": "10.44.255.22/31",
                                                      "longgang-r1:eth2": "10.44.255.23/31"}, LinkState.active)
    after = (default_copy / "guangdong.yml").read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and changed == [
        ("      eth6: {description: 至龙岗区（新建）}", "      eth6: {address: 10.44.255.22/31, description: 至龙岗区（新建）}"),
        ("      eth2: {description: 至广州市核心（新建）}", "      eth2: {address: 10.44.255.23/31, description: 至广州市核心（新建）}"),
        ("    state: planned", "    state: active"),
    ]
    # and back: the decommission edit restores the text exactly
    with al.locked(default_copy):
        al.record_link(default_copy, "longgang-up2", {"guangzhou-r1:eth6": None, "longgang-r1:eth2": None},
                       LinkState.planned)
    assert (default_copy / "guangdong.yml").read_text(encoding="utf-8").splitlines() == before


def test_a_link_edit_killed_between_its_files_is_completed_by_the_next_load(default_copy, monkeypatch, netops):
    """The links of guangdong in a file of their own: decommissioning longgang-up1 edits the addresses
    in guangdong.yml and the state in guangdong-links.yml. A Ctrl-C between the two renames left the
    addresses gone and the link active: an inventory that no longer validated, every command exit 2."""
    gd = default_copy / "guangdong.yml"
    text = gd.read_text(encoding="utf-8")
    cut = text.index("\nlinks:\n") + 1
    gd.write_text(text[:cut], encoding="utf-8")
    (default_copy / "guangdong-links.yml").write_text(text[cut:], encoding="utf-8")
    real, renamed = os.replace, []

    def replace(src, dst, **kw):  # the second file renamed into the inventory directory: Ctrl-C
        if Path(dst).parent == default_copy:
            renamed.append(dst)
            if len(renamed) == 2:
                raise KeyboardInterrupt
        return real(src, dst, **kw)

    with monkeypatch.context() as m, al.locked(default_copy):
        m.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            al.record_link(default_copy, "longgang-up1", {"longgang-r1:eth1": None, "shenzhen-r1:eth5": None},
                           LinkState.planned)
    r = netops("inventory", "validate", "-i", str(default_copy))  # the next command completes the change first
    assert r.returncode == 0, r.stderr
    inv = inventory.load(default_copy)
    link = inv.links["longgang-up1"]
    assert link.state == LinkState.planned and inv.interface(link.a).address is None is inv.interface(link.b).address
    assert sorted(p.name for p in default_copy.iterdir()) == ["guangdong-links.yml", "guangdong.yml", "ministry.yml",
                                                              "network.yml", "sichuan.yml"]


def test_block_style_interface_and_flow_style_link_are_edited(vendors_copy):
    with al.locked(vendors_copy):
        inv = al.record_link(vendors_copy, "xb-up", {"xb-r1:GigabitEthernet0/1": "10.44.255.5/31",
                                                     "sz-r1:GigabitEthernet0/0/2": "10.44.255.4/31"}, LinkState.active)
        assert str(inv.devices["xb-r1"].interfaces["GigabitEthernet0/1"].address) == "10.44.255.5/31"
        inv = al.record_link(vendors_copy, "xc-up", {"xc-r1:eth1": "10.44.255.7/31",
                                                     "sz-r1:GigabitEthernet0/0/3": "10.44.255.6/31"}, LinkState.active)
    assert inv.links["xc-up"].state == LinkState.active and inv.links["xb-up"].state == LinkState.active
    text = (vendors_copy / "inventory.yml").read_text(encoding="utf-8")
    assert "      GigabitEthernet0/1:\n        address: 10.44.255.5/31\n        description: 至市核心\n" in text
    assert "    bandwidth_mbps: 50\n    state: active\n" in text  # the block-style line, replaced in place
    assert 'kind: mpls_vpn, bandwidth_mbps: 100, state: active}' in text  # flow style: in place
    assert "    state: planned                  # provisioned by the tests" in text  # xa-up untouched


_RESERVE = "import sys; from pathlib import Path; from topology.provision.allocate import reserve; " \
           "print(reserve(Path(sys.argv[1]), sys.argv[2])[1].subnet)"


def test_concurrent_runs_for_different_counties_get_different_subnets(vendors_copy):
    procs = [subprocess.Popen([sys.executable, "-c", _RESERVE, str(vendors_copy), link], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for link in ("xa-up", "xb-up", "xc-up")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    subnets = {o[0].strip() for o in outs}
    assert subnets == {"10.44.255.2/31", "10.44.255.4/31", "10.44.255.6/31"}
    inv = inventory.load(vendors_copy)  # all three recorded, the file still valid
    assert {str(inv.devices[d].interfaces[i].address.network) for d, i in
            (("xa-r1", "GigabitEthernet1/0/1"), ("xb-r1", "GigabitEthernet0/1"), ("xc-r1", "eth1"))} == subnets


def test_full_pool_is_a_clear_error(vendors_copy, netops):
    f = vendors_copy / "inventory.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("p2p: [10.44.255.0/29]", "p2p: [10.44.255.0/30]"), encoding="utf-8")
    al.reserve(vendors_copy, "xa-up")
    with pytest.raises(al.PoolFull, match=r"10.44.255.0/30 is in use \(pool full\)"):
        al.reserve(vendors_copy, "xb-up")
    p = netops("link", "provision", "xb", "--check", "-i", str(vendors_copy))
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1 and "pool full" in p.stderr


def test_same_link_twice_the_second_run_fails_cleanly(default_copy, netops):
    (default_copy / "changes").mkdir()
    fd = os.open(default_copy / "changes/.link-longgang-up2.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        p = netops("link", "provision", "longgang", "-i", str(default_copy))
    finally:
        os.close(fd)
    assert p.returncode == 2 and "another netops run is changing it now" in p.stderr
    assert len(p.stderr.splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (("provision", "nosuch"), "site 'nosuch': unknown county"),
    (("provision", "guangzhou"), "site 'guangzhou': unknown county"),
    (("provision", "panyu"), "site 'panyu': no planned county link"),
    (("decommission", "nosuch-link"), "link 'nosuch-link': unknown link"),
    (("decommission", "longgang-up1"), "the only active uplink of county 'longgang'"),
    (("decommission", "longgang-up2"), "already planned and unaddressed"),
])
def test_bad_input_is_one_line_exit_2(default_copy, netops, args, message):
    p = netops("link", *args, "-i", str(default_copy))
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_platform_without_template_is_bad_input_before_any_device(vendors_copy, tmp_path, netops):
    tdir = tmp_path / "templates"
    shutil.copytree(REPO / "topology/provision/templates", tdir)
    shutil.rmtree(tdir / "hp_comware")
    before = _snapshot(vendors_copy)
    p = netops("link", "provision", "xa", "-i", str(vendors_copy),
               env=clean_env(NETOPS_PROVISION_TEMPLATES=str(tdir)))
    assert p.returncode == 2 and "device 'xa-r1': platform 'hp_comware' has no link template" in p.stderr
    assert len(p.stderr.splitlines()) == 1 and _snapshot(vendors_copy) == before  # no allocation written


def test_unreachable_device_pushes_nothing(vendors_copy, netops):
    before = _snapshot(vendors_copy)
    # nothing listens on 127.0.0.13:22 (xa-r1's management address): connection refused
    p = netops("link", "provision", "xa", "-i", str(vendors_copy), "--json",
               env=clean_env(NETOPS_TEST_PASSWORD="pw"))
    assert p.returncode == 3, p.stderr
    assert "unreachable over SSH" in p.stderr and "nothing pushed" in p.stderr
    env = json.loads(p.stdout)  # the error contract's envelope
    assert env["ok"] is False and env["code"] == 3 and "nothing pushed" in env["error"]
    # nothing written either: no backup, no change record, no allocation in the inventory
    assert {k: v for k, v in _snapshot(vendors_copy).items() if not k.parts[0] == "changes"} == before
    assert not list((vendors_copy / "changes").rglob("*.cfg")) and not (vendors_copy / "changes/links.jsonl").exists()


# --- rendering ------------------------------------------------------------------------------

# how each platform writes the address, the OSPF area and the bandwidth (checked on the parsed tree)
SYNTAX = {
    "frr": ("ip address {a.ip}/{a.network.prefixlen}", "ip ospf area 0.0.0.44", "bandwidth {bw}"),
    "huawei_vrp": ("ip address {a.ip} {a.network.prefixlen}", "ospf enable 1 area 0.0.0.44", "bandwidth {bw}"),
    "hp_comware": ("ip address {a.ip} {a.network.prefixlen}", "ospf 1 area 0.0.0.44", "bandwidth {kbps}"),
    "cisco_ios": ("ip address {a.ip} {a.network.netmask}", "ip ospf 1 area 44", "bandwidth {kbps}"),
}


@pytest.mark.parametrize("root, link_id", PROVISION_LINKS)
def test_render_round_trip_and_golden(root, link_id, tmp_path):
    copy = tmp_path / "inv"
    shutil.copytree(root, copy)
    inv, alloc, texts = render_link(copy, link_id)
    link = inv.links[link_id]
    for end in link.ends():
        dev = inv.devices[end.device]
        tree = rd.parse(texts[end.device])
        stanza = tree.find(f"interface {end.interface}")
        assert stanza is not None, texts[end.device]
        a, bw = alloc.ends[str(end)], link.bandwidth_mbps
        want = [w.format(a=a, bw=bw, kbps=bw * 1000) for w in SYNTAX[dev.platform]]
        lines = [c.line for c in stanza.children]
        assert all(w in lines for w in want), (dev.platform, lines)
        assert f"description {inv.interface(end).description}" in lines
        # only compared here: tests/golden/regenerate.py rewrites the goldens, showing the diff for review
        golden = provision_golden(link_id, end.device)
        assert texts[end.device] == golden.read_text(encoding="utf-8"), f"{golden} differs (tests/golden/regenerate.py)"


def test_frr_render_matches_what_the_lab_renders_with_the_link_active(default_copy):
    inv, alloc, texts = render_link(default_copy, "longgang-up2")
    with al.locked(default_copy):
        active = al.record_link(default_copy, "longgang-up2", {k: str(v) for k, v in alloc.ends.items()},
                                LinkState.active)
    plan = build(active, "jinbao")
    for dev, ifn in (("longgang-r1", "eth2"), ("guangzhou-r1", "eth6")):
        mine = rd.parse(texts[dev])
        lab = rd.parse(plan.nodes[dev].frr_conf)
        assert sorted(c.line for c in mine.find(f"interface {ifn}").children) == \
            sorted(c.line for c in lab.find(f"interface {ifn}").children)
        # every other line it renders is already in the lab's config: the diff touches only the link
        assert rd.diff(lab, mine, rd.owns(ifn)) == []


def test_diff_adds_then_decommission_removes_and_reverse_undoes():
    running = rd.parse("interface eth2\n description x\nexit\n!\nrouter ospf\n ospf router-id 1.1.1.1\nexit\n")
    full = rd.parse("interface eth2\n description x\n ip address 10.0.0.1/31\nexit\nrouter ospf\n ospf router-id 1.1.1.1\n")
    bare = rd.parse("interface eth2\n description x\nexit\n")
    add = rd.diff(running, full, rd.owns("eth2"))
    assert [(c.path, c.add, c.remove) for c in add] == [(("interface eth2",), ["ip address 10.0.0.1/31"], [])]
    assert rd.commands(add, "no", "exit") == ["interface eth2", "ip address 10.0.0.1/31", "exit"]
    assert rd.commands(add, "no", "exit", reverse=True) == ["interface eth2", "no ip address 10.0.0.1/31", "exit"]
    rm = rd.diff(full, bare, rd.owns("eth2"))
    assert [(c.path, c.add, c.remove) for c in rm] == [(("interface eth2",), [], ["ip address 10.0.0.1/31"])]
    assert rd.diff_text(rm, "undo") == ["  interface eth2", "-  ip address 10.0.0.1/31"]
    assert rd.diff(running, running, rd.owns("eth2")) == []


def test_an_intended_undo_line_asks_for_absence():
    # VRP/Comware do not print a setting that is off by default: `undo telnet server enable` is in
    # place when the running config lacks `telnet server enable`, and pushed only when it has it
    want = rd.parse("undo telnet server enable\nstelnet server enable\n")
    assert rd.diff(rd.parse("stelnet server enable\n"), want, rd.owns("x"), "undo") == []
    on = rd.diff(rd.parse("telnet server enable\nstelnet server enable\n"), want, rd.owns("x"), "undo")
    assert [(c.path, c.add) for c in on] == [((), ["undo telnet server enable"])]
    # undoing it turns telnet back on (not `undo undo …`)
    assert rd.commands(on, "undo", "quit", reverse=True) == ["telnet server enable"]
    assert rd.diff(rd.parse("undo telnet server enable\n"), want, rd.owns("x"), "undo") == \
        [rd.Change((), ["stelnet server enable"], [])]


def test_provision_check_on_the_vendor_fixture_renders_without_a_device(vendors_copy):
    # rendering alone needs no device: every platform template renders both ends
    inv, alloc, texts = render_link(vendors_copy, "xa-up")
    assert set(texts) == {"xa-r1", "sz-r1"}
    with pytest.raises(UsageError, match="platform 'hp_comware' has no link template"):
        rd.render_end(inv, inv.links["xa-up"], inv.links["xa-up"].a, alloc.ends, template_dir=Path("/nonexistent"))


def test_playbook_wraps_the_same_code(default_copy):
    bin_ = Path(sys.executable).parent
    r = subprocess.run([str(bin_ / "ansible-playbook"), "--syntax-check", "playbooks/provision_county_link.yml"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(bin_ / "ansible-playbook"), "playbooks/provision_county_link.yml", "-e", "county=nosuch",
                        "-e", f"inventory_path={default_copy}"], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env=clean_env())
    assert r.returncode != 0 and "site 'nosuch': unknown county" in r.stdout


def test_an_unprinted_default_is_in_place_when_no_value_shows():
    # FRR hides `exec-timeout 10 0` (its default): intended, it is in place when the stanza shows no
    # timeout, and it replaces another value; without this, every rerun of harden devices pushed it again
    want = rd.parse("line vty\n exec-timeout 10 0\n access-class m\n")
    kw = dict(single_value=(r"exec-timeout ",), unprinted=("exec-timeout 10 0",))
    assert rd.diff(rd.parse("line vty\n access-class m\n"), want, lambda h: False, **kw) == []
    ch = rd.diff(rd.parse("line vty\n exec-timeout 30 0\n access-class m\n"), want, lambda h: False, **kw)
    assert [(c.add, c.remove) for c in ch] == [(["exec-timeout 10 0"], ["exec-timeout 30 0"])]
    assert [c.add for c in rd.diff(rd.parse("line vty\n access-class m\n"), want, lambda h: False)] == [["exec-timeout 10 0"]]


def test_a_setting_with_an_unprinted_default_is_undone_by_the_default():
    # FRR rejects `no exec-timeout 30 0`, and `no exec-timeout` means no timeout at all (both found on the lab)
    ch = [rd.Change(("line vty",), ["exec-timeout 10 0"], ["exec-timeout 30 0"])]
    assert rd.commands(ch, "no", "exit", defaults=("exec-timeout 10 0",)) == ["line vty", "exec-timeout 10 0", "exit"]
    assert rd.commands(ch, "no", "exit", reverse=True, defaults=("exec-timeout 10 0",)) == \
        ["line vty", "exec-timeout 10 0", "exec-timeout 30 0", "exit"]


def test_a_fixed_stanza_is_undone_line_by_line():
    # FRR has no `no line vty` (found on the lab: the rollback of a baseline that created the stanza failed)
    ch = [rd.Change(("line vty",), ["exec-timeout 30 0", "access-class m"], [], created=True)]
    assert rd.commands(ch, "no", "exit", reverse=True) == ["no line vty"]
    assert rd.commands(ch, "no", "exit", reverse=True, defaults=("exec-timeout 10 0",), fixed=("line vty",)) == \
        ["line vty", "exec-timeout 10 0", "no access-class m", "exit"]
