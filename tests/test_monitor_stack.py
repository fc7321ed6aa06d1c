"""`netops monitor up|down|status` without the lab: where the servers run, what goes onto a monitor
host, the lab timing option, the host processes, and the errors when the lab is not up."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from conftest import clean_env

from jinbao_netops.inventory import load
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import stack


def test_endpoints_name_every_province_and_the_ministry():
    eps = stack.endpoints(load(None))
    assert eps == {
        "guangdong": {"prometheus": "http://10.254.44.15:9090", "alertmanager": "http://10.254.44.15:9093", "monitor": "gd-mon1"},
        "sichuan": {"prometheus": "http://10.254.51.15:9090", "alertmanager": "http://10.254.51.15:9093", "monitor": "sc-mon1"},
        "ministry": {"prometheus": "http://10.254.0.22:9090", "alertmanager": "http://10.254.0.22:9093", "monitor": "bu-mon1"},
    }


def _alerts(files: dict, rel: str) -> dict[str, dict]:
    return {r["alert"]: r for g in yaml.safe_load(files[rel])["groups"] for r in g["rules"] if "alert" in r}


def test_lab_timing_caps_for_and_shortens_intervals(tmp_path):
    inv = load(None)
    prod = gen.files(inv)
    fast = gen.files(inv, timing=gen.Timing(scrape=5, federate=10, max_for=10))
    p, f = _alerts(prod, "province/guangdong/rules/alerts.yml"), _alerts(fast, "province/guangdong/rules/alerts.yml")
    assert p["NodeDown"]["for"] == "2m" and f["NodeDown"]["for"] == "10s"
    assert p["LinkUtilisationHigh"]["for"] == "10m" and f["LinkUtilisationHigh"]["for"] == "10s"
    # only `for:` (and a root cause's `keep_firing_for:`)
    assert {k: {**v, "for": None, "keep_firing_for": None} for k, v in p.items()} == {
        k: {**v, "for": None, "keep_firing_for": None} for k, v in f.items()}
    assert _alerts(fast, "ministry/rules/ministry.yml")["ProvinceUnreachable"]["for"] == "10s"
    assert _alerts(gen.files(inv, timing=gen.Timing(max_for=300)), "province/guangdong/rules/alerts.yml")["NodeDown"]["for"] == "2m"
    cfg = yaml.safe_load(fast["province/guangdong/prometheus.yml"])
    assert cfg["global"]["scrape_interval"] == cfg["global"]["evaluation_interval"] == "5s"
    assert cfg["scrape_configs"][0]["scrape_timeout"] == "5s"  # never longer than the interval
    assert yaml.safe_load(fast["ministry/prometheus.yml"])["global"]["scrape_interval"] == "10s"
    quick_rules = yaml.safe_load(gen.files(inv, timing=gen.Timing(scrape=5, evaluate=1))["province/guangdong/prometheus.yml"])
    assert quick_rules["global"] == {**cfg["global"], "evaluation_interval": "1s"}
    gen.generate(inv, tmp_path, timing=gen.Timing(scrape=5, federate=10, max_for=10))
    for cfg in ("province/guangdong", "ministry"):
        r = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path / cfg, capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("args,field", [(["--max-for", "0"], "--max-for"), (["--scrape-interval", "-5"], "--scrape-interval"),
                                        (["--evaluation-interval", "0"], "--evaluation-interval"),
                                        (["--scrape-interval", "x"], "--scrape-interval")])
def test_bad_timing_is_one_line_exit_2(netops, tmp_path, args, field):
    r = netops("monitor", "generate", "--out", str(tmp_path), *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and field in r.stderr, r.stderr


def test_bundle_for_a_province_host():
    inv = load(None)
    files = gen.files(inv, timing=gen.Timing(scrape=5))
    gd = next(s for s in stack.servers(inv) if s.key == "guangdong")
    b = stack.bundle(gd, files)
    assert sorted(b) == ["alertmanager/alertmanager.yml", "digest", "prometheus/prometheus.yml", "prometheus/rules/alerts.yml",
                         "prometheus/rules/inventory.yml", "prometheus/rules/records.yml",
                         "systemd/prometheus-alertmanager.conf", "systemd/prometheus.conf"]
    assert b["prometheus/prometheus.yml"] == files["province/guangdong/prometheus.yml"]
    unit = b["systemd/prometheus.conf"].splitlines()
    assert unit[:2] == ["[Service]", "ExecStart="]  # replaces the package's ExecStart, keeps its hardening
    assert "--config.file=/etc/netops-monitor/prometheus/prometheus.yml" in unit[2]
    assert "--web.external-url=http://10.254.44.15:9090" in unit[2]
    assert "--cluster.listen-address=" in b["systemd/prometheus-alertmanager.conf"]
    assert b["digest"] == stack.bundle(gd, gen.files(inv, timing=gen.Timing(scrape=5)))["digest"]  # stable
    assert b["digest"] != stack.bundle(gd, gen.files(inv))["digest"]                             # follows the config
    ministry = stack.bundle(next(s for s in stack.servers(inv) if s.key == "ministry"), files)
    assert ministry["prometheus/prometheus.yml"] == files["ministry/prometheus.yml"]
    assert "prometheus/rules/ministry.yml" in ministry


def test_processes_collectors_in_the_monitor_namespaces_and_the_textfile_server(tmp_path, monkeypatch):
    from jinbao_netops.lab.runtime import Lab

    inv = load(None)
    monkeypatch.setenv("NETOPS_LAB_DIR", str(tmp_path))
    lab = Lab.open(inv)
    lab.dir.mkdir()
    (lab.dir / "state.json").write_text(json.dumps({"nodes": {d: {"ns": f"jb.jinbao.{d}", "mgmt": f"{dev.management}/16"}
                                                              for d, dev in inv.devices.items()}}))
    procs = {p.name: p for p in stack.processes(inv, lab, 5)}
    assert sorted(procs) == ["collect-guangdong", "collect-ministry", "collect-sichuan", "textfile", "traps-guangdong",
                             "traps-ministry", "traps-sichuan"]
    gd = procs["collect-guangdong"]
    assert gd.netns == "jb.jinbao.gd-mon1" and gd.listen == "10.254.44.15:9469"
    assert gd.cmd[1:] == ["-m", "jinbao_netops.cli", "collect", "serve", "-i", str(inv.root), "--scope", "guangdong",
                          "--listen", "10.254.44.15:9469", "--interval", "5"]
    bu = procs["collect-ministry"]  # the ministry's own sites only
    assert bu.netns == "jb.jinbao.bu-mon1" and bu.listen == "10.254.0.22:9469"
    assert bu.cmd[bu.cmd.index("--scope"):bu.cmd.index("--listen")] == ["--scope", "bu", "--stop-at", "province"]
    traps = procs["traps-guangdong"]  # beside the collector, posting to the Alertmanager on the same host
    assert traps.netns == gd.netns and traps.listen == "10.254.44.15:9470"
    assert traps.cmd[traps.cmd.index("traps"):] == ["traps", "-i", str(inv.root), "--scope", "guangdong", "--listen",
                                                    "10.254.44.15:162", "--metrics", "10.254.44.15:9470",
                                                    "--alertmanager", "http://10.254.44.15:9093"]
    assert procs["traps-ministry"].cmd[procs["traps-ministry"].cmd.index("--scope"):][:4] == ["--scope", "bu", "--stop-at",
                                                                                            "province"]
    assert procs["textfile"].netns is None and procs["textfile"].listen == "10.254.0.1:9100"


def test_alive_and_end_only_the_recorded_command():
    cmd = ["sleep", "37"]
    p = subprocess.Popen(cmd)
    try:
        for _ in range(100):  # until the fork has exec'd
            if stack._alive(p.pid, cmd):
                break
            time.sleep(0.05)
        assert stack._alive(p.pid, cmd)
        assert not stack._alive(p.pid, ["sleep", "38"])  # a reused pid running something else is not ours
        stack._end(p.pid, ["sleep", "38"])
        assert p.poll() is None
        stack._end(p.pid, cmd)
        assert p.wait(5) is not None
    finally:
        p.kill()
    assert not stack._alive(p.pid, cmd)


def test_a_process_in_a_replaced_namespace_is_not_running():
    """A collector left in the network namespace of a lab that was taken down and rebuilt is stale."""
    assert stack._in_netns(os.getpid(), None)              # a host process
    assert not stack._in_netns(os.getpid(), "jb.nosuchlab.gd-mon1")


def test_textfile_server_serves_the_catalogue(tmp_path):
    (tmp_path / "netops_backup.prom").write_text('netops_backup_copies{asset="a"} 3\n')
    (tmp_path / "other.txt").write_text("ignored\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jinbao_netops.monitoring.textfile", "--listen", f"127.0.0.1:{port}", "--dir", str(tmp_path)])
    try:
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body == 'netops_backup_copies{asset="a"} 3\n'
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=2)
    finally:
        proc.terminate()
        proc.wait(5)


def test_lab_not_up(netops, tmp_path):
    env = clean_env(NETOPS_LAB_DIR=str(tmp_path))
    r = netops("monitor", "up", "--scrape-interval", "5", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "lab 'jinbao' is not up" in r.stderr, r.stderr
    r = netops("monitor", "status", "--json", env=env)
    assert r.returncode == 1 and json.loads(r.stdout) == {"lab": "jinbao", "lab_up": False, "up": False, "ok": False,
                                                         "installed": False, "servers": [], "processes": []}
    r = netops("monitor", "down", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] and not list(tmp_path.iterdir())
