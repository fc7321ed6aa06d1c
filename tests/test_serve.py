"""`netops serve`: the schedule, the state that survives a killed service, timeouts, retries, SIGTERM,
the metrics. Jobs are real child processes (small Python programs standing in for netops verbs, and
real netops verbs in the CLI tests); the clock is the test's, so no test waits for an interval."""
from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jinbao_netops import procs
from jinbao_netops.cli import main
from jinbao_netops.serve import RETRY_FIRST, Job, Schedule, Service, load_schedule, load_state

from conftest import REPO


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


PROGRAMS = {  # what each test job does, as a Python program
    "ok": "import json; print(json.dumps({'ok': True, 'summary': {'bad': 3}}))",
    "fail": "import json, sys; print(json.dumps({'ok': False, 'code': 4, 'error': 'store unreachable', 'problems': []})); sys.exit(4)",
    "slow": "import time; time.sleep(60)",
    # a verb's own document, not the error envelope (backup verify: a store's repository could not be read)
    "partial": "import json, sys; print(json.dumps({'ok': False, 'stores': []})); "
               "print('✗ gd-dr-bak1: restic repository unreachable', file=sys.stderr); sys.exit(3)",
}


def schedule(**jobs) -> Schedule:
    return Schedule.model_validate({"jobs": {name: {"title": name, "argv": ["x"], "interval": 3600, "timeout": 600,
                                                    "findings": "summary.bad", **spec} for name, spec in jobs.items()}})


def service(tmp_path, sched: Schedule, clock: Clock, **kw) -> Service:
    def command(name, job, stamp):
        return [sys.executable, "-c", PROGRAMS[name.split("-")[0]]]
    return Service(sched, tmp_path, "guangdong", command=command, clock=clock, rng=random.Random(1), **kw)


def settle(svc: Service, clock: Clock, until, timeout: float = 30) -> None:
    """Tick (the clock standing still) until ``until()`` holds: the children finish in real time."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, {n: js.last_result for n, js in svc.jobs.items()}
        svc.tick()
        time.sleep(0.05)


def test_a_run_records_result_findings_and_the_next_run(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(ok={"jitter": 0}), clock)
    svc.start()
    assert svc.jobs["ok"].next_due == clock.t  # first run at once (no jitter)
    settle(svc, clock, lambda: svc.jobs["ok"].last_result)
    js = load_state(tmp_path)["ok"]
    assert (js.last_result, js.last_rc, js.findings, js.running) == ("ok", 0, 3, False)
    assert js.last_success == clock.t and js.next_due == clock.t + 3600
    assert json.loads((tmp_path / "jobs" / "ok" / "last.json").read_text())["summary"] == {"bad": 3}
    assert oct((tmp_path / "serve.json").stat().st_mode & 0o777) == "0o640"


def test_no_second_run_of_a_job_while_one_runs(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(slow={"timeout": 3000}), clock)
    svc.start()
    svc.tick()
    first = svc.running["slow"].proc.pid
    svc.jobs["slow"].next_due = clock.t  # due again while running
    clock.t += 10
    svc.tick()
    assert svc.running["slow"].proc.pid == first and svc.jobs["slow"].runs == {}
    svc.shutdown(grace=0)


def test_a_failing_job_retries_sooner_each_time_and_does_not_hold_up_the_others(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(fail={}, ok={}), clock)
    svc.start()
    for n in range(1, 4):
        clock.t = max(js.next_due for js in svc.jobs.values() if js.last_result != "ok")
        settle(svc, clock, lambda n=n: svc.jobs["fail"].runs.get("failed") == n and "fail" not in svc.running)
        js = svc.jobs["fail"]
        assert js.next_due == clock.t + RETRY_FIRST * 2 ** (n - 1) and js.failures == n
        assert js.note == "store unreachable" and js.last_success is None
    assert svc.jobs["ok"].runs == {"ok": 1}  # ran its own schedule meanwhile


def test_a_partial_run_is_noted_with_its_last_line_on_stderr(tmp_path):
    """A document with ok false but no error (a verb's own, not the envelope) left the note empty."""
    clock = Clock()
    svc = service(tmp_path, schedule(partial={"jitter": 0}), clock)
    svc.start()
    settle(svc, clock, lambda: svc.jobs["partial"].last_result)
    js = load_state(tmp_path)["partial"]
    assert (js.last_result, js.last_rc, js.note) == ("partial", 3, "✗ gd-dr-bak1: restic repository unreachable")


def test_a_job_over_its_timeout_is_ended_and_counted(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(slow={"timeout": 5}), clock)
    svc.start()
    svc.tick()
    pid = svc.running["slow"].proc.pid
    clock.t += 6
    settle(svc, clock, lambda: "slow" not in svc.running)
    js = svc.jobs["slow"]
    assert js.last_result == "timeout" and js.failures == 1 and not procs.running(pid)


def test_a_service_killed_mid_job_ends_the_orphan_and_reruns_the_job(tmp_path):
    """As after kill -9: the state says the run never ended and its child lives on. The next service
    ends that child (it is ours: the same command line) and runs the job at once; the state stays
    readable throughout (written atomically)."""
    clock = Clock()
    dead = service(tmp_path, schedule(slow={"timeout": 3000}), clock)
    dead.start()
    dead.tick()
    orphan = dead.running["slow"].proc
    assert load_state(tmp_path)["slow"].running is True  # on disk before the run could end
    clock.t += 100
    svc = service(tmp_path, schedule(slow={"timeout": 3000}), clock)
    svc.start()
    assert orphan.poll() is not None  # ended by the new service
    js = svc.jobs["slow"]
    assert js.next_due == clock.t and js.last_result == "abandoned" and js.runs == {"abandoned": 1}
    assert not js.running and load_state(tmp_path)["slow"].running is False


def test_a_missed_run_is_caught_up_once(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(ok={}), clock)
    svc.start()
    settle(svc, clock, lambda: svc.jobs["ok"].last_result)
    clock.t += 10 * 3600  # the service was down for ten intervals
    svc = service(tmp_path, schedule(ok={}), clock)
    svc.start()
    assert svc.jobs["ok"].next_due == clock.t
    settle(svc, clock, lambda: svc.jobs["ok"].runs.get("ok") == 2 and "ok" not in svc.running)
    assert svc.jobs["ok"].next_due >= clock.t + 3600  # not ten more runs


def test_stop_gives_a_running_job_its_grace_then_abandons_it(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(slow={"timeout": 3000}, ok={}), clock)
    stop = threading.Event()
    t = threading.Thread(target=svc.run, args=(stop,), kwargs={"grace": 0, "step": 0.05})
    t.start()
    deadline = time.monotonic() + 30
    while "slow" not in svc.running or svc.jobs["ok"].last_result is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = svc.running["slow"].proc.pid
    stop.set()
    t.join(60)
    js = load_state(tmp_path)["slow"]
    assert js.last_result == "abandoned" and js.next_due == clock.t and not js.running
    assert not procs.running(pid)


def test_metrics_parse_and_carry_each_jobs_outcome(tmp_path):
    clock = Clock()
    svc = service(tmp_path, schedule(ok={}, fail={}), clock)
    svc.start()
    settle(svc, clock, lambda: all(js.last_result for js in svc.jobs.values()))
    fams = {f.name: f for f in text_string_to_metric_families(svc.metrics())}
    val = {(s.name, s.labels["job_name"], s.labels.get("result")): s.value
           for f in fams.values() for s in f.samples if "job_name" in s.labels}
    assert val[("netops_serve_job_last_success_timestamp_seconds", "ok", None)] == clock.t
    assert val[("netops_serve_job_last_success_timestamp_seconds", "fail", None)] == 0
    assert val[("netops_serve_job_last_exit_code", "fail", None)] == 4
    assert val[("netops_serve_job_findings", "ok", None)] == 3
    assert val[("netops_serve_job_runs_total", "fail", "failed")] == 1
    assert all(s.labels["scope"] == "guangdong" for f in fams.values() for s in f.samples)


@pytest.mark.parametrize("spec,err", [
    ({"timeout": 7200}, "timeout 7200 s is longer than the interval 3600 s"),
    ({"argv": ["--json"]}, "must start with a netops noun"),
    ({"interval": 5}, "interval"),
    ({"argv": ["audit\n--scope"]}, "argv"),
    ({"colour": "red"}, "unknown field"),
])
def test_a_bad_schedule_is_one_line_per_problem_exit_2(tmp_path, capsys, spec, err):
    job = {"title": "t", "argv": ["audit"], "interval": 3600, "timeout": 600, **spec}
    f = tmp_path / "s.yml"
    f.write_text(json.dumps({"jobs": {"audit": job}}))
    rc = main(["serve", "status", "--schedule", str(f), "--state", str(tmp_path)])
    err_text = capsys.readouterr().err
    assert rc == 2 and err in err_text and str(f) in err_text and "Traceback" not in err_text


def test_the_suites_schedule_is_valid_and_names_real_verbs():
    from jinbao_netops.cli import build_parser

    sched = load_schedule()
    parser = build_parser()
    for name, job in sched.jobs.items():
        words = [w.replace("{state}", "/tmp").replace("{stamp}", "x") for w in job.argv]
        args = parser.parse_args(words + ["--scope", "guangdong"])
        assert args.func, name


def test_run_once_runs_real_verbs_and_status_reports_them(tmp_path, capsys):
    sched = tmp_path / "s.yml"
    sched.write_text(json.dumps({"jobs": {
        "validate": {"title": "校验 validate", "argv": ["inventory", "validate"], "interval": 3600, "timeout": 300,
                     "scoped": False},
        "spof": {"title": "单点 spof", "argv": ["topology", "spof"], "interval": 3600, "timeout": 300, "scoped": False},
        "bad": {"title": "坏 bad", "argv": ["inventory", "show", "nowhere"], "interval": 3600, "timeout": 300,
                "scoped": False}}}))
    state = tmp_path / "state"
    rc = main(["serve", "run", "--once", "--listen", "", "--schedule", str(sched), "--state", str(state)])
    capsys.readouterr()
    assert rc == 4  # the worst run: 'bad' failed (its verb exited 2)
    assert main(["serve", "status", "--json", "--schedule", str(sched), "--state", str(state)]) == 1
    doc = json.loads(capsys.readouterr().out)
    rows = {r["job"]: r for r in doc["jobs"]}
    assert rows["validate"]["last_result"] == "ok" and rows["validate"]["last_rc"] == 0
    assert rows["bad"]["last_result"] == "failed" and "nowhere" in rows["bad"]["note"]
    assert doc["ok"] is False and all(r["next_run"] for r in rows.values())


def test_sigterm_stops_the_foreground_service(tmp_path):
    """`netops serve run` as systemd runs it: metrics served; SIGTERM → exit 0 with the state saved."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched = tmp_path / "s.yml"
    sched.write_text(json.dumps({"jobs": {"validate": {"title": "v", "argv": ["inventory", "validate"],
                                                       "interval": 3600, "timeout": 300, "scoped": False}}}))
    state = tmp_path / "state"
    p = subprocess.Popen([sys.executable, "-m", "jinbao_netops.cli", "serve", "run", "--listen", f"127.0.0.1:{port}",
                          "--schedule", str(sched), "--state", str(state)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NETOPS_INVENTORY": ""})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if 'netops_serve_job_runs_total{job_name="validate",scope="",result="ok"} 1.0' in body:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.2)
        p.terminate()
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert load_state(state)["validate"].last_result == "ok"


def test_job_model_rejects_jitter_not_shorter_than_interval():
    with pytest.raises(ValueError):
        Job.model_validate({"title": "t", "argv": ["audit"], "interval": 60, "timeout": 60, "jitter": 60})


# --- under systemd: the unit, its credentials, the playbook ---------------------------------------------
def test_the_unit_passes_systemd_analyze_and_keeps_hostile_words_one_word(tmp_path):
    import shlex
    import subprocess

    from jinbao_netops.serve import unit

    python = tmp_path / "py thon%n"  # a path systemd would split or specify were it not quoted
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    text = unit(str(python), 'gd" --scope x', "10.254.44.15:9472", ["NETOPS_RESTIC_PASSWORD"], inventory="/srv/inv $HOME%n")
    f = tmp_path / "jinbao-netops-serve.service"
    f.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(f)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    execstart = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    words = shlex.split(execstart[len("ExecStart="):].replace("%%", "%").replace("$$", "$"))
    assert words[0] == str(python) and words[words.index("--scope") + 1] == 'gd" --scope x'
    assert words[words.index("-i") + 1] == "/srv/inv $HOME%n" and words.count("--scope") == 1
    assert "Restart=on-failure" in text and "StateDirectory=jinbao-netops/serve" in text
    # the credential by reference only: its file, never a value, an Environment= line or an argv word
    assert "LoadCredential=NETOPS_RESTIC_PASSWORD:/etc/jinbao-netops/serve-credentials/NETOPS_RESTIC_PASSWORD" in text
    assert "Environment" not in text


@pytest.mark.parametrize("kw,err", [({"credentials": ["RESTIC PASSWORD"]}, "not an environment variable name"),
                                    ({"state": Path("/tmp/serve")}, "under /var/lib"),
                                    ({"python": "/opt/$HOME/python"}, "program's path")])
def test_the_unit_refuses_what_it_cannot_carry(kw, err):
    from jinbao_netops.errors import UsageError
    from jinbao_netops.serve import unit

    with pytest.raises(UsageError, match=err):
        unit(**{"python": "/usr/bin/python3", "scope": "guangdong", "listen": "127.0.0.1:9472", **kw})


def test_a_province_needs_its_devices_credentials_and_known_hosts_and_ships_what_the_controller_has(tmp_path):
    """The default inventory: Guangdong's devices connect with the 'ops' profile only, so its key (a file), SNMP,
    database and restic values and the known_hosts file; never the 三权 administrators' keys."""
    from jinbao_netops.inventory import load
    from jinbao_netops.serve import KNOWN_HOSTS, Credential, needed, shipped

    inv = load(None)
    got = needed(inv, "guangdong")
    assert Credential("NETOPS_SSH_KEY", True) in got and Credential(KNOWN_HOSTS, True) in got
    assert {c.name for c in got if not c.file} >= {"NETOPS_RESTIC_PASSWORD", "NETOPS_DB_MONITOR_PASSWORD",
                                                   "NETOPS_SNMP_AUTH_KEY", "NETOPS_SNMP_PRIV_KEY"}
    assert not any("ADMIN" in c.name for c in got)
    key, kh = tmp_path / "ops", tmp_path / "known_hosts"
    key.write_text("KEY\n")
    kh.write_text("10.0.0.1 ssh-ed25519 AAAA\n")
    env = {"NETOPS_SSH_KEY": str(key), "NETOPS_RESTIC_PASSWORD": "pw",
           "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes"}
    assert shipped(inv, "guangdong", env) == [Credential("NETOPS_SSH_KEY", True, str(key)),
                                              Credential("NETOPS_RESTIC_PASSWORD", False),
                                              Credential(KNOWN_HOSTS, True, str(kh))]
    # a key reference that names no file on the controller is not shipped (the jobs report it missing)
    assert [c.name for c in shipped(inv, "guangdong", {**env, "NETOPS_SSH_KEY": str(tmp_path / "none")})] == [
        "NETOPS_RESTIC_PASSWORD", KNOWN_HOSTS]


def test_systemd_credentials_become_the_jobs_environment(tmp_path):
    """`serve run` under the unit: a value credential is the {env: NAME} value its jobs read, a key file
    credential the path to its file, the known_hosts credential the jobs' UserKnownHostsFile; and a job
    actually logs in with them (paramiko over a key, known_hosts as the suite's access layer reads it)."""
    from jinbao_netops.access import known_hosts_path
    from jinbao_netops.errors import UsageError
    from jinbao_netops.serve import KNOWN_HOSTS, job_environment

    creds = tmp_path / "creds dir"
    creds.mkdir()
    for name, text in [("NETOPS_RESTIC_PASSWORD", "s3cret with spaces $x\n"), ("NETOPS_SSH_KEY", "KEY\n"),
                       (KNOWN_HOSTS, "10.0.0.1 ssh-ed25519 AAAA\n")]:
        (creds / name).write_text(text)
        (creds / name).chmod(0o400)  # as systemd makes them: the service user's, read-only
    env = job_environment({"CREDENTIALS_DIRECTORY": str(creds), "PATH": "/bin"}, {"NETOPS_SSH_KEY"})
    assert env["NETOPS_RESTIC_PASSWORD"] == "s3cret with spaces $x\n" and env["PATH"] == "/bin"
    assert env["NETOPS_SSH_KEY"] == str(creds / "NETOPS_SSH_KEY")
    assert known_hosts_path(env) == str(creds / KNOWN_HOSTS)  # a path with a space stays one word
    assert "StrictHostKeyChecking=yes" in env["ANSIBLE_SSH_COMMON_ARGS"] and KNOWN_HOSTS not in env
    assert job_environment({"PATH": "/bin"}, {"NETOPS_SSH_KEY"}) == {"PATH": "/bin"}  # not under systemd
    sched = Schedule.model_validate({"jobs": {"env": {"title": "env", "argv": ["x"], "interval": 3600, "timeout": 60}}})
    prog = ("import os, json; print(json.dumps({'ok': os.environ['NETOPS_RESTIC_PASSWORD'] == 's3cret with spaces $x\\n', "
            "'key': open(os.environ['NETOPS_SSH_KEY']).read()}))")
    svc = Service(sched, tmp_path, command=lambda *_: [sys.executable, "-c", prog], environ=env, rng=random.Random(1))
    svc.start()
    settle(svc, Clock(time.time() + 10), lambda: svc.jobs["env"].last_result)
    assert json.loads((tmp_path / "jobs/env/last.json").read_text()) == {"ok": True, "key": "KEY\n"}
    # a key others can read is refused (ssh would refuse it, mid-job)
    (creds / "NETOPS_SSH_KEY").chmod(0o644)
    with pytest.raises(UsageError, match="unreadable to others"):
        job_environment({"CREDENTIALS_DIRECTORY": str(creds)}, {"NETOPS_SSH_KEY"})
    (creds / "NETOPS_SSH_KEY").chmod(0o400)
    (creds / "bad-name").write_text("x")
    with pytest.raises(UsageError, match="not an environment variable name"):
        job_environment({"CREDENTIALS_DIRECTORY": str(creds)}, set())


def test_run_now_starts_a_job_before_its_time_and_waits_for_its_result(tmp_path, capsys):
    """`serve run-now JOB` while the service runs: the job runs at the service's next tick, not at its next
    due time; --wait shows that run's result; an unknown job is a usage error."""
    sched = tmp_path / "s.yml"
    sched.write_text(json.dumps({"jobs": {"ok": {"title": "ok", "argv": ["x"], "interval": 3600, "timeout": 60,
                                                 "findings": "summary.bad"}}}))
    state = tmp_path / "state"
    state.mkdir()
    svc = service(state, load_schedule(sched), Clock(time.time()))
    svc.start()
    settle(svc, svc.clock, lambda: svc.jobs["ok"].last_result)  # the first run
    first_end = svc.jobs["ok"].last_end
    svc.clock.t += 60  # due again in an hour only
    stop = threading.Event()
    ticking = threading.Thread(target=lambda: [(svc.tick(), time.sleep(0.05)) for _ in iter(lambda: stop.is_set(), True)])
    ticking.start()
    try:
        rc = main(["--json", "serve", "run-now", "ok", "--schedule", str(sched), "--state", str(state), "--wait", "30"])
    finally:
        stop.set()
        ticking.join()
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] and [r["job"] for r in doc["jobs"]] == ["ok"], doc
    assert doc["jobs"][0]["findings"] == 3 and load_state(state)["ok"].runs == {"ok": 2}
    assert load_state(state)["ok"].last_end > first_end and not (state / "jobs/ok/run-now").exists()
    assert main(["serve", "run-now", "nope", "--schedule", str(sched), "--state", str(state)]) == 2
    assert "no such job" in capsys.readouterr().err


def test_the_playbook_is_lint_clean_and_aims_at_each_provinces_monitor_host():
    import subprocess

    from conftest import clean_env

    bin_ = os.path.dirname(sys.executable)
    r = subprocess.run([f"{bin_}/ansible-lint", "serve.yml"], cwd=REPO / "playbooks", env=clean_env(),
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([f"{bin_}/ansible-playbook", "--list-hosts", "playbooks/serve.yml"], cwd=REPO, env=clean_env(),
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    hosts = sorted(line.strip() for line in r.stdout.split("hosts (", 1)[1].splitlines()[1:] if line.strip())
    assert hosts == ["gd-mon1", "sc-mon1"]
