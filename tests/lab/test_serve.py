"""`netops serve` under systemd in the lab: playbooks/serve.yml installs it on Guangdong's monitor host, the
unit runs, `serve status --json` shows the schedule; the service killed with SIGKILL mid-job is restarted by
systemd, reruns the job, and its state is whole (valid JSON, no temporary file left). A short schedule: one
job that takes a few seconds (generating the national inventory into the state directory)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from jinbao_netops.serve import PORT, STATE_DEFAULT

from .conftest import REPO, netops, until

pytestmark = pytest.mark.lab
MON, ADDR = "gd-mon1", "10.254.44.15"
SCHEDULE = {"jobs": {"national": {"title": "全国清单 national inventory", "argv": ["inventory", "generate", "--out", "{state}/national-{stamp}"],
                                  "interval": 3600, "timeout": 300, "scoped": False}}}


def playbook(lab, **extra) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}, **lab["env"]}
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "playbooks/serve.yml",
                           "--limit", MON, "-e", json.dumps({"netops_serve_python": sys.executable, **extra})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def on_node(*cmd: str) -> subprocess.CompletedProcess:
    return netops("lab", "exec", MON, "--", *cmd, timeout=60)


def state() -> dict:
    r = on_node("cat", f"{STATE_DEFAULT}/serve.json")
    return json.loads(r.stdout) if r.returncode == 0 else {}  # json.loads fails the test on a half-written file


def main_pid() -> int:
    return int(on_node("systemctl", "show", "-p", "MainPID", "--value", "jinbao-netops-serve").stdout.strip() or 0)


@pytest.fixture
def service(lab, tmp_path):
    sched = tmp_path / "schedule.yml"
    sched.write_text(json.dumps(SCHEDULE))
    r = playbook(lab, netops_serve_schedule=str(sched))
    try:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        yield
    finally:
        gone = playbook(lab, netops_serve_state="absent")
    assert gone.returncode == 0, gone.stdout[-3000:]
    left = on_node("sh", "-c", f"ls -d /etc/systemd/system/jinbao-netops-serve.service /etc/jinbao-netops/serve-* {STATE_DEFAULT} 2>/dev/null;"
                   " systemctl is-active jinbao-netops-serve")
    assert left.stdout.split() == ["inactive"], left.stdout


def test_killed_mid_job_systemd_restarts_it_and_the_job_reruns_on_whole_state(service):
    # first thing (the job's first run starts with the service and takes seconds): inside the node, as soon as
    # the state says the run started, SIGKILL the service's main process
    kill = on_node("sh", "-c", f"""for i in $(seq 200); do grep -q '"running": true' {STATE_DEFAULT}/serve.json 2>/dev/null && break; sleep 0.05; done
pid=$(systemctl show -p MainPID --value jinbao-netops-serve); kill -9 "$pid" && echo "$pid" """)
    assert kill.returncode == 0 and kill.stdout.strip(), kill.stdout + kill.stderr
    pid = int(kill.stdout.split()[-1])
    until("systemd restarted the service", lambda: main_pid() not in (0, pid)
          and on_node("systemctl", "is-active", "jinbao-netops-serve").stdout.strip() == "active", 30)
    unit = on_node("systemctl", "cat", "jinbao-netops-serve").stdout
    assert "Restart=on-failure" in unit and "LoadCredential=NETOPS_RESTIC_PASSWORD:" in unit
    assert os.environ.get("NETOPS_RESTIC_PASSWORD", "\0") not in unit
    status = on_node(sys.executable, "-m", "jinbao_netops.cli", "serve", "status", "--json",
                     "--schedule", "/etc/jinbao-netops/serve-schedule.yml")
    doc = json.loads(status.stdout)
    assert [j["job"] for j in doc["jobs"]] == ["national"] and doc["jobs"][0]["interval_s"] == 3600, status.stdout
    done = until("the job rerun to its end", lambda: (lambda js: js if js.get("last_result") == "ok" else None)(
        state().get("jobs", {}).get("national", {})), 60)
    assert done["runs"] == {"abandoned": 1, "ok": 1} and not done["running"]
    # nothing half-written: no temporary file of an atomic write, the run's output renamed into place
    files = on_node("find", str(STATE_DEFAULT), "-name", ".*").stdout.split()
    assert files == [], files
    assert "✓ wrote" in on_node("cat", f"{STATE_DEFAULT}/jobs/national/last.json").stdout  # the rerun's own output
    with urllib.request.urlopen(f"http://{ADDR}:{PORT}/metrics", timeout=5) as r:
        body = r.read().decode()
    assert 'netops_serve_job_runs_total{job_name="national",scope="guangdong",result="abandoned"} 1.0' in body
