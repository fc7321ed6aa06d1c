"""The one access layer: host keys decided strictly in one place for every room, per-device failures,
password-only credentials, sessions reused within a run."""
from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from jinbao_netops.access import Access, HostKeyError
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory.platforms import LINUX_HEALTH, PLATFORMS
from jinbao_netops.security.audit import SERVER_COLLECT
from jinbao_netops.testing.simssh import SshSim, keypair

FIX = REPO / "tests/fixtures"
RUNNING = (FIX / "collect/frr_show_running_config.txt").read_text()
SHOW = PLATFORMS["frr"].cli_exec.format(command=shlex.quote(PLATFORMS["frr"].show_running))
OUTPUTS = {SHOW: RUNNING, "vtysh -H /dev/null -c 'show ip ospf neighbor'": (FIX / "collect/frr_show_ip_ospf_neighbor.txt").read_text(),
           "ip -s -j link": (FIX / "collect/frr_ip_link.txt").read_text(), LINUX_HEALTH: (FIX / "collect/linux_health.txt").read_text(),
           # the audit's read-only collection script on the router's Linux host (the script comes on stdin)
           SERVER_COLLECT: (FIX / "security/frr-host-hardened.txt").read_text()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssh_fingerprint(public_line: str) -> str:
    """What OpenSSH itself says the key's fingerprint is (an independent reading of the key)."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=public_line, capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


@pytest.fixture
def fleet(tmp_path):
    """Three simulated FRR routers: 'good' is in known_hosts, 'changed' is there with another key,
    'unknown' is not there at all."""
    devices = {"good": ("127.0.8.1", OUTPUTS), "changed": ("127.0.8.2", OUTPUTS), "unknown": ("127.0.8.3", OUTPUTS)}
    with SshSim(devices, free_port()) as sim:
        real = Path(sim.known_hosts).read_text().splitlines()[0].split(maxsplit=1)[1]
        other = keypair(tmp_path / "other_host_key")
        Path(sim.known_hosts).write_text(f"[127.0.8.1]:{sim.port} {real}\n[127.0.8.2]:{sim.port} {other}\n")
        inv = sim.inventory({n: "frr" for n in devices})
        yield sim, inv, openssh_fingerprint(real)


def _refused(error: str, device: str, fp: str) -> bool:
    """The one-line reason names the fingerprint the device offered and whether it was changed or unknown."""
    return "\n" not in error and fp in error and ("CHANGED" in error if device == "changed" else "unknown host key" in error)


def test_every_room_refuses_an_untrusted_host_key_per_device(fleet, tmp_path):
    sim, inv, fp = fleet
    env = sim.environ()

    # collect
    from jinbao_netops.collectors.ssh import collect_all, targets
    with Access(inv, env, port=sim.port) as access:
        got = {r["device"]: r for r in collect_all(targets(inv, sorted(inv.devices)), access)}
    assert got["good"]["ok"] and got["good"]["ospf_neighbors"]
    for bad in ("changed", "unknown"):
        assert not got[bad]["ok"] and _refused(got[bad]["error"], bad, fp), got[bad]

    # backup (the config archive)
    from jinbao_netops.backup.configs import backup_configs
    store = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(store)], check=True)
    inv.devices["bak"] = inv.devices["good"].model_copy(update={"id": "bak", "role": "backup_store", "platform": "debian",
                                                                 "loopback": None, "management": "127.0.8.9"})
    inv.index()
    rep = backup_configs(inv, access=Access(inv, env, port=sim.port), remotes={"bak": str(store)},
                         workdir=tmp_path / "work" / "configs")
    by = {d["device"]: d for d in rep["devices"]}
    assert by["good"]["ok"] and not by["changed"]["ok"] and not by["unknown"]["ok"]
    assert all(_refused(by[d]["error"], d, fp) for d in ("changed", "unknown"))
    del inv.devices["bak"]
    inv.index()

    # audit
    from jinbao_netops.security.audit import run_audit, session_runner
    with Access(inv, env, port=sim.port) as access:
        hosts = {h["host"]: h for h in run_audit(inv, None, run=session_runner(access), parallel=3)["hosts"]}
    assert hosts["good"]["status"] == "ok" and hosts["good"]["results"]
    for bad in ("changed", "unknown"):
        assert hosts[bad]["status"] == "unreachable" and hosts[bad]["results"] == []
        assert _refused(hosts[bad]["error"], bad, fp), hosts[bad]

    # streams (OpenSSH, for backup and drills) are refused before OpenSSH is started
    with Access(inv, env, port=sim.port) as access:
        assert access.ssh_argv("good")[-1] == "127.0.8.1"
        with pytest.raises(HostKeyError, match=re.escape(fp)):
            access.ssh_argv("changed")


def test_provisioning_refuses_an_untrusted_host_key_and_pushes_nothing(tmp_path):
    sys.path.insert(0, str(FIX / "provision"))
    from fakedevice import FakeDevice

    from jinbao_netops import inventory
    from jinbao_netops.topology.provision import engine as en

    copy = tmp_path / "vend"
    shutil.copytree(FIX / "provision/vendors", copy)
    inv = inventory.load(copy)
    kh = tmp_path / "known_hosts"
    fakes, port = {}, 0
    try:
        for name, style in (("sz-r1", "vrp"), ("xa-r1", "vrp")):
            dev = inv.devices[name]
            fakes[name] = FakeDevice(name, style, f"sysname {name}\ninterface GigabitEthernet0/0/1\n", str(dev.loopback),
                                     address=str(dev.management), port=port)
            port = fakes[name].port
        impostor = FakeDevice("xa-r1", "vrp", "sysname x\n", "10.0.0.9", address="127.0.0.1", port=0)
        # known_hosts holds another device's key for xa-r1: the key xa-r1 offers has changed
        kh.write_text(fakes["sz-r1"].known_hosts_line() +
                      impostor.known_hosts_line().replace(f"[127.0.0.1]:{impostor.port}",
                                                          f"[{inv.devices['xa-r1'].management}]:{port}"))
        env = {"NETOPS_TEST_PASSWORD": "pw", "NETOPS_SNMP_AUTH_KEY": "a" * 12, "NETOPS_SNMP_PRIV_KEY": "p" * 12,
               "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={kh}"}
        offered = fakes["xa-r1"].host_key
        fp = openssh_fingerprint(f"{offered.get_name()} {offered.get_base64()}")
        with pytest.raises(DeviceError, match=rf"device 'xa-r1': host key CHANGED .*{re.escape(fp)}.*nothing pushed") as e:
            en.change(copy, en.county_link(copy, "xa", en.Options()), "provision", en.Options(port=port), environ=env)
        assert isinstance(e.value, DeviceError) and e.value.code == 3
        assert not any(line.startswith("interface") for f in fakes.values() for line in f.received)
        assert not (copy / "changes/links.jsonl").exists()
        impostor.close()
    finally:
        for f in fakes.values():
            f.close()


def test_a_password_only_credential_works_for_sessions_and_fails_streams_for_that_device_alone():
    with SshSim({"srv": ("127.0.9.1", OUTPUTS)}, free_port(), password="s3cret-pw") as sim:
        inv = sim.inventory({"srv": "debian"})
        from jinbao_netops.inventory.model import Credentials, SecretRef
        inv.credentials["sim"] = Credentials(id="sim", username="netops", password=SecretRef(env="SIM_PW"))
        with Access(inv, {**sim.environ(), "SIM_PW": "s3cret-pw"}, port=sim.port) as access:
            assert access.session("srv").run(LINUX_HEALTH) == OUTPUTS[LINUX_HEALTH]
            with pytest.raises(DeviceError, match="device 'srv': a stream .* needs an SSH key credential"):
                access.ssh_argv("srv")


def test_sessions_are_reused_within_a_run_and_a_dead_one_is_replaced():
    with SshSim({"a": ("127.0.9.2", OUTPUTS)}, free_port()) as sim:
        inv = sim.inventory({"a": "debian"})
        with Access(inv, sim.environ(), port=sim.port) as access:
            first = access.session("a")
            assert access.session("a") is first and access.kept("a")
            first.client.close()
            second = access.session("a")
            assert second is not first and second.run("ip -s -j link")
        assert not access.kept("a")


def test_a_missing_credential_fails_that_device_not_the_run(tmp_path):
    with SshSim({"a": ("127.0.9.3", OUTPUTS)}, free_port()) as sim:
        inv = sim.inventory({"a": "debian"})
        access = Access(inv, {"ANSIBLE_SSH_COMMON_ARGS": sim.environ()["ANSIBLE_SSH_COMMON_ARGS"]}, port=sim.port)
        with pytest.raises(DeviceError, match=r"device 'a': .*field 'ssh_key': environment variable NETOPS_SIM_SSH_KEY is not set"):
            access.session("a")


def test_a_device_declared_without_ssh_is_never_logged_in_to():
    """A v2c-only router (access: [snmp], a profile with a community only): every SSH path of the access
    layer refuses it with one clear reason before reading a credential (it was a credential error)."""
    from conftest import snmp_only

    from jinbao_netops import inventory
    from jinbao_netops.access import NoSshAccess

    inv = snmp_only(inventory.load(inventory.DEFAULT_INVENTORY), "huadu-r1")
    access = Access(inv, {})  # no credential resolves: only the declared access can decide
    reason = "device 'huadu-r1': no SSH access declared (access: [snmp]) 未声明SSH访问方式"
    for path in (access.login, access.session, access.ssh_argv):
        with pytest.raises(NoSshAccess) as e:
            path("huadu-r1")
        assert str(e.value) == reason and isinstance(e.value, DeviceError) and e.value.code == 3
    assert not access.kept("huadu-r1")
