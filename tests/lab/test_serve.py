"""`netops serve` under systemd in the lab: playbooks/serve.yml installs it on Guangdong's monitor host, the
unit runs, `serve status --json` shows the schedule; the service killed with SIGKILL mid-job is restarted by
systemd, reruns the job, and its state is whole (valid JSON, no temporary file left) — a short schedule: one
job that takes a few seconds (generating the national inventory into the state directory). And the real jobs
(the default schedule's config archive and audit, at once) reach the devices from inside the node with the
credentials the playbook shipped."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request

import pytest

from jinbao_netops.serve import PORT, STATE_DEFAULT, load_schedule

from .conftest import REPO, netops, until

pytestmark = pytest.mark.lab
MON, ADDR = "gd-mon1", "10.254.44.15"
SCHEDULE = {"jobs": {"national": {"title": "全国清单 national inventory", "argv": ["inventory", "generate", "--out", "{state}/national-{stamp}"],
                                  "interval": 3600, "timeout": 300, "scoped": False}}}
# the default schedule's config archive and audit as they are, started at once (no jitter)
REAL = {"jobs": {n: {**j.model_dump(exclude_none=True), "jitter": 0} for n, j in load_schedule().jobs.items() if n in ("archive", "audit")}}


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
def service(lab, tmp_path, request):
    sched = tmp_path / "schedule.yml"
    sched.write_text(json.dumps(request.param))
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


@pytest.mark.parametrize("service", [SCHEDULE], indirect=True)
def test_killed_mid_job_systemd_restarts_it_and_the_job_reruns_on_whole_state(service):
    # the first run (it starts with the service, maybe before the playbook has returned) to its end; then a run
    # asked for with `serve run-now`, and as soon as the state says it started, SIGKILL the service's main process
    until("the first run", lambda: state().get("jobs", {}).get("national", {}).get("last_result") == "ok", 60)
    cli = shlex.join([sys.executable, "-m", "jinbao_netops.cli", "serve", "run-now", "national",
                      "--schedule", "/etc/jinbao-netops/serve-schedule.yml"])
    kill = on_node("sh", "-c", f"""{cli} >/dev/null || exit 1
for i in $(seq 200); do grep -q '"running": true' {STATE_DEFAULT}/serve.json 2>/dev/null && break; sleep 0.05; done
pid=$(systemctl show -p MainPID --value jinbao-netops-serve); kill -9 "$pid" && echo "$pid" """)
    assert kill.returncode == 0 and kill.stdout.strip(), kill.stdout + kill.stderr
    pid = int(kill.stdout.split()[-1])
    # systemd SIGKILLs the orphaned job at once, then waits for the node's cgroup to report empty before the
    # restart: about 35 s in the lab's nodes (seen in its journal), so up to 90 s here
    until("systemd restarted the service", lambda: main_pid() not in (0, pid)
          and on_node("systemctl", "is-active", "jinbao-netops-serve").stdout.strip() == "active", 90)
    unit = on_node("systemctl", "cat", "jinbao-netops-serve").stdout
    assert "Restart=on-failure" in unit and "LoadCredential=NETOPS_RESTIC_PASSWORD:" in unit
    assert os.environ.get("NETOPS_RESTIC_PASSWORD", "\0") not in unit
    status = on_node(sys.executable, "-m", "jinbao_netops.cli", "serve", "status", "--json",
                     "--schedule", "/etc/jinbao-netops/serve-schedule.yml")
    doc = json.loads(status.stdout)
    assert [j["job"] for j in doc["jobs"]] == ["national"] and doc["jobs"][0]["interval_s"] == 3600, status.stdout
    done = until("the job rerun to its end", lambda: (lambda js: js if js.get("runs", {}).get("ok") == 2 else None)(
        state().get("jobs", {}).get("national", {})), 60)
    assert done["runs"] == {"abandoned": 1, "ok": 2} and done["last_result"] == "ok" and not done["running"]
    # nothing half-written: no temporary file of an atomic write, the run's output renamed into place
    files = on_node("find", str(STATE_DEFAULT), "-name", ".*").stdout.split()
    assert files == [], files
    last = json.loads(on_node("cat", f"{STATE_DEFAULT}/jobs/national/last.json").stdout)  # the rerun's own document
    assert last["ok"] is True and last["out"].startswith(f"{STATE_DEFAULT}/national-")
    with urllib.request.urlopen(f"http://{ADDR}:{PORT}/metrics", timeout=5) as r:
        body = r.read().decode()
    assert 'netops_serve_job_runs_total{job_name="national",scope="guangdong",result="abandoned"} 1.0' in body


@pytest.mark.parametrize("service", [REAL], indirect=True)
def test_the_real_jobs_reach_the_devices_from_the_node_with_the_shipped_credentials(service):
    """Inside the node the jobs have no file of this machine: the SSH key and known_hosts are the unit's
    credentials. The config archive and the audit end ok or with findings, never a login or host-key failure."""
    def ended():
        jobs = state().get("jobs", {})
        return jobs if all(jobs.get(n, {}).get("last_result") and not jobs[n]["running"] for n in REAL["jobs"]) else None

    jobs = until("the archive and the audit ended", ended, 150)
    errs = {n: on_node("cat", f"{STATE_DEFAULT}/jobs/{n}/last.err").stdout[-1500:] for n in jobs}
    for name, js in jobs.items():
        assert js["last_result"] in ("ok", "findings"), (name, js["note"], errs[name])
    audit = json.loads(on_node("cat", f"{STATE_DEFAULT}/jobs/audit/last.json").stdout)
    assert audit["summary"]["unreachable"] == [] and audit["summary"]["reachable"] == audit["summary"]["hosts"] > 0, audit["summary"]
    for text in [json.dumps(jobs)] + list(errs.values()):
        assert "unknown host key" not in text and "not set" not in text and "Permission denied" not in text, text
