"""The vendor push path (VRP, Comware, IOS) through real netmiko against a test-double SSH device
that answers like the vendor CLI, keeps a running config the pushed lines change, and records
every line it receives. The rendered text is the real template output, parsed by the same parser."""
from __future__ import annotations

import shutil
import sys

import pytest

from topology.provision import allocate as al
from topology.provision import render as rd
from topology.provision.device import connect

from conftest import REPO

sys.path.insert(0, str(REPO / "tests/fixtures/provision"))
from fakedevice import FakeDevice  # noqa: E402

VENDORS = REPO / "tests/fixtures/provision/vendors"
STYLE = {"huawei_vrp": "huawei", "hp_comware": "huawei", "cisco_ios": "cisco"}
START = {  # each device's running config before the change (its interface carries only a description)
    "huawei_vrp": "sysname {h}\n#\ninterface {i}\n description {d}\n#\nospf 1 router-id {lo}\n bandwidth-reference 100000\n#\n",
    "hp_comware": "sysname {h}\n#\ninterface {i}\n description {d}\n#\n",
    "cisco_ios": "hostname {h}\n!\ninterface {i}\n description {d}\n!\n",
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    copy = tmp_path / "vend"
    shutil.copytree(VENDORS, copy)
    monkeypatch.setenv("NETOPS_TEST_PASSWORD", "pw")
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    monkeypatch.setenv("ANSIBLE_SSH_COMMON_ARGS", f"-o UserKnownHostsFile={kh}")
    return copy, kh


def _double(inv, end, kh):
    dev = inv.devices[end.device]
    itf = inv.interface(end)
    fake = FakeDevice(dev.id, STYLE[dev.platform], START[dev.platform].format(
        h=dev.id, i=end.interface, d=itf.description, lo=dev.loopback))
    with open(kh, "a") as f:
        f.write(fake.known_hosts_line())
    return fake


@pytest.mark.parametrize("link_id, device", [("xa-up", "xa-r1"), ("xa-up", "sz-r1"), ("xb-up", "xb-r1")])
def test_push_confirm_and_rollback_through_netmiko(env, link_id, device):
    copy, kh = env
    inv, alloc = al.reserve(copy, link_id)
    link = inv.links[link_id]
    end = next(e for e in link.ends() if e.device == device)
    dev = inv.devices[device]
    plat = dev.platform_info
    fake = _double(inv, end, kh)
    try:
        s = connect(inv, dev.model_copy(update={"management": "127.0.0.1"}), port=fake.port)
        backup = s.show_running()
        assert rd.parse(backup).find(f"interface {end.interface}") is not None
        intended = rd.render_end(inv, link, end, alloc.ends)
        changes = rd.diff(rd.parse(backup), rd.parse(intended), rd.owns(end.interface))
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
        assert rd.diff(now, rd.parse(intended), rd.owns(end.interface)) == [] or plat.name != "frr"
        # roll back: the reverse commands restore the backup byte for byte
        s.configure(rd.commands(changes, plat.negate, plat.stanza_exit, reverse=True))
        assert s.show_running() == backup
        fake.received.clear()
        s.confirm()
        s.save()
        assert plat.confirm in fake.received and plat.save in fake.received
        s.close()
    finally:
        fake.close()
