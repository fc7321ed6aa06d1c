"""Device-config archive with a fake fetcher and real git repositories in a temporary directory."""
from __future__ import annotations

import json
import subprocess
import threading

import pytest

from jinbao_netops import inventory
from jinbao_netops.backup import filters
from jinbao_netops.backup.configs import backup_configs
from jinbao_netops.backup.remote import store_of
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory.platforms import PLATFORMS

from conftest import clean_env

INV = inventory.load(inventory.DEFAULT_INVENTORY)


def frr_config(dev: str, extra: str = "") -> str:
    return (f"Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\nhostname {dev}\n"
            f"interface eth0\n description lan{extra}\n ip ospf message-digest-key 1 md5 s3cret\nexit\n!\nend\n")


class Fleet:
    """Fake devices: a config per device, a set that fails, counters of calls."""

    def __init__(self):
        self.extra: dict[str, str] = {}
        self.fail: set[str] = set()
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, dev):
        with self.lock:
            self.calls += 1
        if dev.id in self.fail:
            raise DeviceError(dev.id, f"{dev.management}: timed out after 30 s")
        return frr_config(dev.id, self.extra.get(dev.id, ""))


@pytest.fixture
def stores(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "state"))
    remotes = {}
    for sid in ("gd-bak1", "sc-bak1", "gd-dr-bak1", "sc-dr-bak1"):
        bare = tmp_path / "stores" / sid / "configs.git"
        remotes[sid] = str(bare)
    return remotes


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def run(fleet, stores, tmp_path, scope=None):
    return backup_configs(INV, scope, fetcher=fleet, remotes=stores, workdir=tmp_path / "work" / "configs")


def test_first_run_archives_every_router_then_unchanged_run_makes_no_commit(tmp_path, stores):
    fleet = Fleet()
    rep = run(fleet, stores, tmp_path)
    routers = sorted(d for d, dev in INV.devices.items() if dev.platform_info.kind == "network")
    assert fleet.calls == len(routers) - 2  # the ministry's two routers have no provincial store above them
    assert rep["unassigned"] == ["bu-r1", "bu-r2"]
    assert rep["failed"] == 0 and rep["changed"] == len(routers) - 2
    gd = git(stores["gd-bak1"], "ls-tree", "-r", "--name-only", "main").split()
    assert "guangzhou/guangzhou-r1.cfg" in gd and not any(p.startswith("chengdu/") for p in gd)
    stored = git(stores["gd-bak1"], "show", "main:guangzhou/guangzhou-r1.cfg")
    assert "Building configuration" not in stored and "md5 <redacted>" in stored and "s3cret" not in stored
    assert len(git(stores["gd-bak1"], "log", "--oneline", "main").splitlines()) == 1

    again = run(fleet, stores, tmp_path)
    assert again["changed"] == 0 and all(s["commit"] is None and s["pushed"] for s in again["stores"])
    assert len(git(stores["gd-bak1"], "log", "--oneline", "main").splitlines()) == 1
    assert json.loads(open(again["report"]).read())["changed"] == 0


def test_the_archive_is_copied_off_site_to_the_dr_store_and_catalogued(tmp_path, stores):
    from jinbao_netops.backup import catalogue

    fleet = Fleet()
    rep = run(fleet, stores, tmp_path)
    assert {(s["store"], s["dr_store"], s["offsite"]) for s in rep["stores"]} == {
        ("gd-bak1", "gd-dr-bak1", True), ("sc-bak1", "sc-dr-bak1", True)}
    for sid, dr in (("gd-bak1", "gd-dr-bak1"), ("sc-bak1", "sc-dr-bak1")):
        assert git(stores[dr], "rev-parse", "main") == git(stores[sid], "rev-parse", "main")
    cat = catalogue.load()["assets"]
    head = git(stores["gd-bak1"], "rev-parse", "main").strip()
    e = cat["huadu-r1:config"]
    assert e["kind"] == "configs" and e["province"] == "guangdong" and e["store"] == "gd-bak1"
    assert e["snapshot"] == head[:12] and e["filename"] == "huadu/huadu-r1.cfg" and e["size"] > 50
    assert catalogue.derived(e) == {"copies": 3, "ok_321": 1, "verify_ok": None}
    prom = (tmp_path / "state/metrics/netops_backup.prom").read_text()
    assert 'netops_backup_321_ok{province="guangdong",site="huadu",device="huadu-r1",kind="configs",asset="huadu-r1:config"} 1' in prom

    # the DR copy diverged (written by someone else): reported, never overwritten; the province copy goes on
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", stores["gd-dr-bak1"], str(other)], check=True)
    git(other, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "foreign")
    git(other, "push", "-q", "origin", "main")
    fleet.extra["huadu-r1"] = "\n description after"
    rep = run(fleet, stores, tmp_path)
    gd = next(s for s in rep["stores"] if s["store"] == "gd-bak1")
    assert gd["pushed"] and not gd["offsite"] and "off-site copy to gd-dr-bak1" in gd["offsite_error"]
    assert rep["offsite_failed"] == 1 and rep["failed"] == 1 and rep["ok"] == 16
    assert git(stores["gd-dr-bak1"], "log", "-1", "--format=%s", "main").strip() == "foreign"
    e = catalogue.load()["assets"]["huadu-r1:config"]
    assert e["offsite"] is False and catalogue.derived(e)["ok_321"] == 0

    from jinbao_netops.access import Access
    from jinbao_netops.backup.restore import restore
    from jinbao_netops.errors import UsageError

    with pytest.raises(UsageError, match=r"'huadu-r1:config': a device configuration lives in the province's git archive"):
        restore(Access(INV), "huadu-r1:config", "huadu-r1", shell=lambda d: ["true"])


def test_a_change_is_one_commit_with_its_diff(tmp_path, stores):
    fleet = Fleet()
    run(fleet, stores, tmp_path)
    fleet.extra["huadu-r1"] = "\n description 测试变更"
    rep = run(fleet, stores, tmp_path, scope="guangdong")
    changed = [d for d in rep["devices"] if d["changed"]]
    assert [d["device"] for d in changed] == ["huadu-r1"]
    assert "+ description 测试变更" in changed[0]["diff"] and changed[0]["diff"].startswith("diff --git")
    gd = next(s for s in rep["stores"] if s["store"] == "gd-bak1")
    assert gd["commit"] and git(stores["gd-bak1"], "rev-parse", "main").strip() == gd["commit"]
    assert "huadu-r1" in git(stores["gd-bak1"], "log", "-1", "--format=%s", "main")
    assert len(git(stores["sc-bak1"], "log", "--oneline", "main").splitlines()) == 1  # other province untouched


def test_a_failed_device_is_reported_and_keeps_its_last_file(tmp_path, stores):
    fleet = Fleet()
    run(fleet, stores, tmp_path)
    fleet.fail = {"gd-r1"}
    fleet.extra = {d: "\n description x" for d in INV.devices}
    rep = run(fleet, stores, tmp_path)
    bad = [d for d in rep["devices"] if not d["ok"]]
    assert [(d["device"], d["error"]) for d in bad] == [("gd-r1", "10.254.44.11: timed out after 30 s")]
    assert rep["changed"] == rep["ok"] == 15
    assert "description x" not in git(stores["gd-bak1"], "show", "main:guangdong/gd-r1.cfg")


def test_a_killed_run_leaves_the_archive_usable(tmp_path, stores):
    fleet = Fleet()
    run(fleet, stores, tmp_path)
    work = tmp_path / "work" / "configs" / "gd-bak1"
    # what SIGKILL between `git add` and `git commit` leaves: a lock file and a half-staged index
    (work / "guangzhou/guangzhou-r1.cfg").write_text("half written\n")
    git(work, "add", "guangzhou/guangzhou-r1.cfg")
    (work / ".git/index.lock").write_text("")
    fleet.extra["panyu-r1"] = "\n description after-kill"
    rep = run(fleet, stores, tmp_path)
    assert rep["failed"] == 0 and [d["device"] for d in rep["devices"] if d["changed"]] == ["panyu-r1"]
    assert "half written" not in git(stores["gd-bak1"], "show", "main:guangzhou/guangzhou-r1.cfg")


def test_the_store_ahead_of_the_clone_is_followed(tmp_path, stores):
    fleet = Fleet()
    run(fleet, stores, tmp_path)
    # another ops host archived a change; this host's clone must fast-forward, not diverge
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", stores["gd-bak1"], str(other)], check=True)
    (other / "guangdong/gd-r1.cfg").write_text(frr_config("gd-r1", "\n description elsewhere"))
    git(other, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qam", "elsewhere")
    git(other, "push", "-q", "origin", "main")
    rep = run(fleet, stores, tmp_path, scope="guangdong")
    assert rep["failed"] == 0
    assert [d["device"] for d in rep["devices"] if d["changed"]] == ["gd-r1"]  # back to what the device says
    assert "- description elsewhere" in next(d for d in rep["devices"] if d["changed"])["diff"]


def test_store_of_is_the_province_centre_for_dr_city_and_county():
    assert store_of(INV, "huadu").id == store_of(INV, "guangdong_zaibei").id == "gd-bak1"
    assert store_of(INV, "jiangyou").id == "sc-bak1"
    assert store_of(INV, "bu") is None


# --- filters ----------------------------------------------------------------------------------
def test_every_network_platform_has_filter_rows():
    net = {p for p, info in PLATFORMS.items() if info.kind == "network"}
    assert net <= set(filters.VOLATILE) and all(PLATFORMS[p].secrets for p in net)


@pytest.mark.parametrize("platform,raw,gone,kept", [
    ("cisco_ios", "Building configuration...\r\n\r\nCurrent configuration : 1234 bytes\r\n! Last configuration change at "
     "10:00:01 UTC Mon Nov 23 2026 by netops\r\nhostname r1\r\nenable secret 5 $1$abc$xyz\r\nusername netops privilege 15 "
     "secret 9 $9$abcdef\r\nsnmp-server community public RO\r\nntp clock-period 17179\r\n",
     ["Last configuration change", "1234 bytes", "$1$abc$xyz", "$9$abcdef", "public", "clock-period"],
     ["hostname r1", "enable secret 5 <redacted>", "snmp-server community <redacted> RO"]),
    ("huawei_vrp", "!Software Version V800R021C00\n!Last configuration was updated at 2026-11-23 10:00:01+08:00\n"
     "sysname gd-r1\nlocal-user netops password irreversible-cipher $1c$abc$\nsnmp-agent community read cipher %^%#xyz%^%#\n",
     ["V800R021C00", "2026-11-23", "$1c$abc$", "%^%#xyz%^%#"],
     ["sysname gd-r1", "password irreversible-cipher <redacted>", "snmp-agent community read cipher <redacted>"]),
    ("hp_comware", " sysname h3c-1\n local-user netops class manage\n  password hash $h$6$abc==\n"
     " snmp-agent community read simple public\n",
     ["$h$6$abc==", "public"], ["sysname h3c-1", "password hash <redacted>"]),
    ("frr", "Building configuration...\nfrr version 8.4.4\n neighbor 10.0.0.1 password bgp-secret\n",
     ["Building configuration", "bgp-secret"], ["frr version 8.4.4", "neighbor 10.0.0.1 password <redacted>"]),
])
def test_filters_drop_volatile_lines_and_redact_secrets(platform, raw, gone, kept):
    text = filters.clean(platform, raw)
    for g in gone:
        assert g not in text
    for k in kept:
        assert k in text
    assert "\r" not in text and text.endswith("\n") and not text.startswith("\n")


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_unknown_scope_is_one_line_exit_2(netops, tmp_path):
    r = netops("backup", "run", "--kind", "configs", "--scope", "atlantis", env=clean_env(NETOPS_BACKUP_STATE=str(tmp_path)))
    assert r.returncode == 2 and r.stderr.strip() == (f"netops: {inventory.DEFAULT_INVENTORY}: --scope 'atlantis': no such site or device "
                                                      "(see `netops inventory graph`)")


def test_cli_missing_credentials_is_partial_with_every_device_reported(netops, tmp_path):
    env = {k: v for k, v in clean_env(NETOPS_BACKUP_STATE=str(tmp_path)).items() if k != "NETOPS_SSH_KEY"}
    r = netops("backup", "run", "--kind", "configs", "--scope", "guangzhou", "--json", env=env)
    assert r.returncode == 3, r.stderr
    rep = json.loads(r.stdout)["configs"]
    assert {d["device"] for d in rep["devices"]} == {"guangzhou-r1", "panyu-r1", "huadu-r1"}
    assert all("NETOPS_SSH_KEY is not set" in d["error"] for d in rep["devices"])


def test_backup_over_ssh_from_simulated_frr_devices(tmp_path, stores):
    """The real pull (an SSH exec of the platform table's command, as for the lab's FRR routers) from SSH
    simulators answering a recorded FRR running config: stored filtered, one file per device; a device
    nobody answers fails alone, in one line."""
    import copy
    import shlex
    import socket
    from ipaddress import IPv4Address
    from pathlib import Path

    from jinbao_netops.access import Access
    from jinbao_netops.testing.simssh import SshSim

    recorded = (Path(__file__).parent / "fixtures/collect/frr_show_running_config.txt").read_text()
    command = PLATFORMS["frr"].cli_exec.format(command=shlex.quote(PLATFORMS["frr"].show_running))
    assert command == "vtysh -H /dev/null -c 'show running-config'"
    addrs = {"guangzhou-r1": "127.0.7.1", "huadu-r1": "127.0.7.2", "panyu-r1": "127.0.7.3"}
    inv = copy.copy(INV)
    inv.devices = {**INV.devices, **{d: INV.devices[d].model_copy(update={"management": IPv4Address(a)}) for d, a in addrs.items()}}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = {d: (a, {command: recorded.replace("hostname guangzhou-r1", f"hostname {d}")})
              for d, a in addrs.items() if d != "panyu-r1"}  # nothing listens on panyu-r1's address
    with SshSim(served, port) as sim:
        env = {"NETOPS_SSH_KEY": sim.client_key, "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={sim.known_hosts}"}
        rep = backup_configs(inv, "guangzhou", access=Access(inv, env, port=port), remotes=stores,
                             workdir=tmp_path / "work" / "configs", workers=4)
    by = {d["device"]: d for d in rep["devices"]}
    assert sorted(by) == sorted(addrs) and rep["ok"] == 2 and rep["failed"] == 1
    assert "127.0.7.3" in by["panyu-r1"]["error"] and "\n" not in by["panyu-r1"]["error"]
    stored = git(stores["gd-bak1"], "show", "main:huadu/huadu-r1.cfg")
    assert stored == filters.clean("frr", served["huadu-r1"][1][command])
    assert stored.startswith("!\nfrr version 8.4.4\n") and "hostname huadu-r1\n" in stored
    assert " ip address 10.44.255.3/31\n" in stored and "Building configuration" not in stored
    assert git(stores["gd-bak1"], "ls-tree", "-r", "--name-only", "main").split() == [
        "guangzhou/guangzhou-r1.cfg", "huadu/huadu-r1.cfg"]


def test_a_device_without_ssh_access_is_skipped_with_the_reason(tmp_path, stores, capsys):
    """A v2c-only router (access: [snmp]) has no running config the suite can read: it is listed as skipped
    with the reason — not asked, not failed, not dropped silently, no catalogue asset; the others are archived."""
    from conftest import snmp_only

    from jinbao_netops.backup import catalogue
    from jinbao_netops.backup.commands import _print_configs
    from jinbao_netops.output import Out

    fleet = Fleet()
    asked = []
    rep = backup_configs(snmp_only(INV, "huadu-r1"), "guangzhou", fetcher=lambda d: asked.append(d.id) or fleet(d),
                         remotes=stores, workdir=tmp_path / "work" / "configs")
    assert rep["skipped"] == {"huadu-r1": "no SSH access declared (access: [snmp]) 未声明SSH访问方式"}
    assert "huadu-r1" not in asked and "huadu-r1" not in {d["device"] for d in rep["devices"]}
    assert rep["failed"] == 0 and rep["ok"] == len(rep["devices"]) > 0
    assert "huadu-r1:config" not in catalogue.load()["assets"]
    assert json.loads(open(rep["report"]).read())["skipped"] == rep["skipped"]
    _print_configs(Out(json_mode=False), rep)
    assert "跳过 skipped huadu-r1: no SSH access declared (access: [snmp])" in capsys.readouterr().out
