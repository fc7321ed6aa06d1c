"""`netops serve run | status`: a province's operations service — the suite's jobs on a schedule
(``schedule.yml``: config archive and drift check hourly; inventory reconciliation, audit, backup and log-store verification daily), each job's outcome
as Prometheus metrics, its state on disk so a restart loses nothing.

Each job is a netops command line run as a child process on the service's scope, with ``--json``:
a job that hangs is ended at its timeout and a job that crashes costs its own run, which threads of
one process could not promise. What a run printed (its JSON document, or the error contract's
envelope) is kept as the job's last result.

The rules that make it a service rather than a loop:

- one run of a job at a time; jobs run side by side up to ``--parallel``;
- a job starts up to its ``jitter`` late; a run missed while the service was down is caught up once
  at start (not once per missed interval);
- a job that fails is retried sooner (1, 2, 4 … minutes, never later than its interval) and never
  holds up the others;
- the state file is written atomically before a job starts and after it ends: a service killed
  mid-job (even ``kill -9``) finds the run marked unfinished when it starts again, ends the orphaned
  child if it is still alive, and runs the job again at once;
- SIGTERM (systemd stop) or Ctrl-C: no new runs; a running job gets ``--grace`` seconds to finish,
  then Ctrl-C (the suite's commands roll back on it), then SIGKILL; it is recorded as abandoned and
  runs first after the restart.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import escape, metricshttp, procs
from .errors import FAILED, FINDINGS, OK, NetopsError, UsageError
from .files import write_atomic
from .output import Out

SCHEDULE = Path(__file__).with_name("schedule.yml")
STATE_ENV = "NETOPS_SERVE_STATE"
STATE_DEFAULT = Path("/var/lib/jinbao-netops/serve")
PORT = 9472                 # beside the collector (9469) on the monitor host; the province's Prometheus scrapes it
LISTEN_DEFAULT = f"127.0.0.1:{PORT}"
UNIT = "jinbao-netops-serve.service"  # how playbooks/serve.yml installs it on each province's monitor host
TARGET_FILE = "/etc/jinbao-netops/serve-target.json"  # on that host: the service's scrape target (Prometheus file_sd)
CREDENTIALS_DIR = "/etc/jinbao-netops/serve-credentials"  # on that host: 0700, one 0600 file per credential
KNOWN_HOSTS = "NETOPS_KNOWN_HOSTS"  # the credential that holds the known_hosts file the jobs check host keys against
MAX_SCHEDULE_BYTES = 64 * 1024
RETRY_FIRST = 60            # seconds before the first retry of a failed run; doubles per failure
KILL_WAIT = 10              # seconds between Ctrl-C and SIGKILL for a job that must end
REQUEST = "run-now"         # a file in a job's folder: `serve run-now JOB` asks the running service to start it now
STALE_FACTOR = 2            # a job is stale when its last success is older than this many intervals
RESULTS = ("ok", "findings", "partial", "failed", "timeout", "abandoned")


# --- the schedule ----------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Word = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Job(_Strict):
    """One scheduled job: a netops command line and when it runs."""
    title: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    argv: Annotated[list[Word], Field(min_length=1, max_length=40)]
    interval: Annotated[int, Field(ge=60, le=31 * 86400)]
    timeout: Annotated[int, Field(ge=5)]
    jitter: Annotated[int, Field(ge=0)] = 0
    scoped: bool = True
    findings: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _fits(self):
        if self.timeout > self.interval:
            raise ValueError(f"timeout {self.timeout} s is longer than the interval {self.interval} s")
        if self.jitter >= self.interval:
            raise ValueError(f"jitter {self.jitter} s is not shorter than the interval {self.interval} s")
        if self.argv[0].startswith("-"):
            raise ValueError("argv must start with a netops noun, not an option")
        return self


class Schedule(_Strict):
    jobs: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")], Job], Field(min_length=1, max_length=50)]


def load_schedule(path: Path | None = None) -> Schedule:
    """The schedule file, read like the inventory (a regular UTF-8 file, bounded, no aliases bombs) and
    typed; every problem one line ``FILE:LINE: schedule: field 'F': …`` (exit status 2)."""
    from jinbao_netops.inventory import InventoryError
    from jinbao_netops.inventory.loader import one_line, read_yaml, schema_problems

    path = Path(path or SCHEDULE)
    raw = read_yaml(path, Schedule.model_fields, "not a serve schedule 不是运维服务计划", MAX_SCHEDULE_BYTES)
    if isinstance(raw, InventoryError):
        raise UsageError(problems=raw.problems)
    if raw is None:
        raise UsageError(f"{path}: document: field '(file)': empty; a schedule with jobs is expected 需要作业计划")
    try:
        return Schedule.model_validate(dict(raw))
    except ValidationError as e:
        raise UsageError(problems=[one_line(p) for p in schema_problems(f"{path}:{raw.line}", "schedule", e)]) from None


# --- the state on disk -----------------------------------------------------------------------------
@dataclass
class JobState:
    next_due: float | None = None       # when the next run starts (UNIX time)
    last_start: float | None = None
    last_end: float | None = None
    last_rc: int | None = None
    last_result: str | None = None      # one of RESULTS
    last_success: float | None = None   # end of the last run that did its work (exit 0 or 1)
    duration_s: float | None = None
    findings: int | None = None
    failures: int = 0                   # failed runs in a row
    running: bool = False               # a run started and has not been recorded as ended
    pid: int | None = None              # the running child, to end it if the service died under it
    argv: list[str] = field(default_factory=list)
    note: str = ""                      # why the last run ended so, or why the job is due
    runs: dict = field(default_factory=dict)  # result → count


def _state_file(state_dir: Path) -> Path:
    return state_dir / "serve.json"


def load_state(state_dir: Path) -> dict[str, JobState]:
    path = _state_file(state_dir)
    try:
        data = json.loads(path.read_text())
        return {name: JobState(**js) for name, js in data["jobs"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NetopsError(f"{path}: not the service's state ({type(e).__name__}: {e}); move it aside to start afresh "
                          "状态文件损坏", code=FAILED) from None


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _result(rc: int) -> str:
    return {OK: "ok", FINDINGS: "findings", 3: "partial"}.get(rc, "failed")


def _count(doc: object, path: str | None) -> int | None:
    """The number at ``path`` (dotted keys) in a job's JSON document, or None."""
    if path is None or not isinstance(doc, dict):
        return None
    for key in path.split("."):
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, int) and not isinstance(doc, bool) else None


# --- the service -----------------------------------------------------------------------------------
@dataclass
class _Running:
    proc: subprocess.Popen
    started: float
    out: Path
    err: Path
    ending: float | None = None   # when it was told to end (timeout or shutdown)
    why: str = ""                 # "timeout" or "abandoned"


class Service:
    """The schedule carried out on one scope. ``command(name, job, stamp)`` builds a run's argv (by
    default the netops command line; tests give other programs)."""

    def __init__(self, schedule: Schedule, state_dir: Path, scope: str | None = None, inventory: str | None = None,
                 parallel: int = 2, command: Callable[[str, Job, str], list[str]] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None, environ=None):
        self.schedule, self.state_dir, self.scope, self.inventory = schedule, Path(state_dir), scope, inventory
        self.environ = dict(os.environ if environ is None else environ)  # the jobs' environment (credential references)
        self.parallel = parallel
        self.command = command or self.netops_argv
        self.clock, self.rng = clock, rng or random.Random()
        self.jobs: dict[str, JobState] = {}
        self.running: dict[str, _Running] = {}
        self.lock = threading.Lock()   # the metrics server reads self.jobs from its own thread

    def netops_argv(self, name: str, job: Job, stamp: str) -> list[str]:
        words = [w.replace("{state}", str(self.state_dir)).replace("{stamp}", stamp) for w in job.argv]
        argv = [sys.executable, "-m", "jinbao_netops.cli", "--json"]
        if self.inventory:
            argv += ["-i", str(self.inventory)]
        return argv + words + (["--scope", self.scope] if job.scoped and self.scope else [])

    # state
    def save(self) -> None:
        with self.lock:
            doc = {"version": 1, "scope": self.scope, "jobs": {n: asdict(js) for n, js in self.jobs.items()}}
        write_atomic(_state_file(self.state_dir), json.dumps(doc, ensure_ascii=False, indent=1), mode=0o640)

    def start(self) -> None:
        """Read the state the last service left and decide each job's next run."""
        (self.state_dir / "jobs").mkdir(exist_ok=True, mode=0o750)
        for name, job in self.schedule.jobs.items():
            (self.state_dir / "jobs" / name).mkdir(exist_ok=True, mode=0o750)
            for word in job.argv:  # a file a job writes under the state directory: its folder is made here
                if word.startswith("{state}/"):
                    folder = (self.state_dir / word[len("{state}/"):]).parent.resolve()
                    if not folder.is_relative_to(self.state_dir.resolve()):
                        raise UsageError(f"schedule: job '{name}': field 'argv': {word!r} leaves the state directory")
                    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        old = load_state(self.state_dir)
        now = self.clock()
        for name, job in self.schedule.jobs.items():
            js = old.get(name, JobState())
            if js.running:  # the service died under this run: end the orphan if it lives on, run again now
                if js.pid and js.argv:
                    procs.end([js.pid], lambda cmd, argv=js.argv: cmd == argv, timeout=KILL_WAIT)
                js.running, js.pid, js.next_due = False, None, now
                js.last_result, js.note = "abandoned", "上次运行未完成，立即重跑 the service stopped during the last run: run again"
                js.runs["abandoned"] = js.runs.get("abandoned", 0) + 1
            elif js.next_due is None:
                js.next_due, js.note = now + self.rng.uniform(0, job.jitter), "首次运行 first run"
            elif js.next_due < now:
                js.next_due, js.note = now, "补跑一次错过的运行 a run was missed while the service was down: caught up once"
            self.jobs[name] = js
        self.save()

    def due(self, now: float) -> list[str]:
        waiting = [n for n, js in self.jobs.items() if n not in self.running and js.next_due is not None and js.next_due <= now]
        return sorted(waiting, key=lambda n: self.jobs[n].next_due)[:max(0, self.parallel - len(self.running))]

    def launch(self, name: str, now: float) -> None:
        job, js = self.schedule.jobs[name], self.jobs[name]
        argv = self.command(name, job, _stamp(now))
        d = self.state_dir / "jobs" / name
        out, err = d / "run.out", d / "run.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            os.fchmod(fo.fileno(), 0o640)
            os.fchmod(fe.fileno(), 0o640)
            proc = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=self.environ,
                                    start_new_session=True)
        self.running[name] = _Running(proc, now, out, err)
        with self.lock:
            js.running, js.pid, js.argv, js.last_start = True, proc.pid, argv, now
        self.save()  # before it can finish: a service killed from here on finds the run unfinished

    def tell_to_end(self, name: str, why: str, now: float) -> None:
        r = self.running[name]
        if r.ending is None:
            r.ending, r.why = now, why
            procs.kill(-r.proc.pid, signal.SIGINT)  # the job's process group: the suite's commands roll back on Ctrl-C
        elif now - r.ending >= KILL_WAIT:
            procs.kill(-r.proc.pid, signal.SIGKILL)

    def requested(self, now: float) -> None:
        """Jobs asked for by `serve run-now` become due now (a running one when its run has ended)."""
        for name, js in self.jobs.items():
            flag = self.state_dir / "jobs" / name / REQUEST
            if name in self.running or not flag.exists():
                continue
            flag.unlink(missing_ok=True)
            with self.lock:
                js.next_due, js.note = now, "按请求立即运行 run now as requested (serve run-now)"
            self.save()

    def tick(self) -> None:
        """One look at the running jobs (finished? over time?), the requested and the due ones."""
        now = self.clock()
        self.requested(now)
        for name, r in list(self.running.items()):
            rc = r.proc.poll()
            if rc is not None:
                self.finish(name, rc, now)
            elif now - r.started > self.schedule.jobs[name].timeout:
                self.tell_to_end(name, "timeout", now)
        for name in self.due(now):
            self.launch(name, now)

    def finish(self, name: str, rc: int, now: float) -> None:
        job, js, r = self.schedule.jobs[name], self.jobs[name], self.running.pop(name)
        text = r.out.read_text(errors="replace")
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        result = r.why or _result(rc)
        if isinstance(doc, dict) and doc.get("ok") is False and doc.get("error"):  # the error contract's envelope
            note = str(doc["error"])[:500]
        elif result in ("timeout", "abandoned"):
            note = {"timeout": f"超时 ended after its timeout of {job.timeout} s",
                    "abandoned": "服务停止时中止 ended when the service stopped"}[result]
        else:
            note = r.err.read_text(errors="replace").strip().splitlines()[-1:] if rc not in (OK, FINDINGS) else []
            note = note[0][:500] if note else ""
        os.replace(r.out, r.out.with_name("last.json"))
        os.replace(r.err, r.err.with_name("last.err"))
        with self.lock:
            js.running, js.pid, js.last_end, js.last_rc, js.last_result = False, None, now, rc, result
            js.duration_s, js.note = round(now - r.started, 3), note
            js.findings = _count(doc, job.findings) if result in ("ok", "findings") else None
            if js.findings is None and result in ("ok", "findings"):
                js.findings = int(result == "findings")
            js.runs[result] = js.runs.get(result, 0) + 1
            if result in ("ok", "findings"):
                js.failures, js.last_success = 0, now
                js.next_due = now + job.interval + self.rng.uniform(0, job.jitter)
            elif result == "abandoned":
                js.next_due = now  # first thing after the restart
            else:
                js.failures += 1
                js.next_due = now + min(job.interval, RETRY_FIRST * 2 ** (js.failures - 1))
        self.save()

    def run(self, stop: threading.Event | procs.StopOnSignal, once: bool = False, grace: float = 30.0, step: float = 0.5) -> int:
        """Carry out the schedule until ``stop`` is set (``once``: every job once, now). Returns the
        exit status: 0, or under ``once`` the worst of the runs (1 findings, 3 partial, 4 failed)."""
        self.start()
        if once:
            now = self.clock()
            with self.lock:
                for js in self.jobs.values():
                    js.next_due = now
        ran: set[str] = set()
        while not stop.is_set():
            before = set(self.running)
            self.tick()
            ran |= before | set(self.running)
            if once and ran >= set(self.jobs) and not self.running:
                break
            stop.wait(step)
        self.shutdown(grace)
        if not once:
            return OK
        worst = OK
        for js in self.jobs.values():
            rc = {"ok": OK, "findings": FINDINGS, "partial": 3}.get(js.last_result or "failed", FAILED)
            worst = max(worst, rc)
        return worst

    def shutdown(self, grace: float) -> None:
        """No new runs; running jobs get ``grace`` seconds, then are ended and recorded as abandoned."""
        deadline = self.clock() + grace
        while self.running:
            now = self.clock()
            for name, r in list(self.running.items()):
                rc = r.proc.poll()
                if rc is not None:
                    self.finish(name, rc, now)
                elif now >= deadline:
                    self.tell_to_end(name, "abandoned", now)
            time.sleep(0.1)

    # what Prometheus scrapes
    def metrics(self) -> str:
        now = self.clock()
        lines = []

        def family(metric: str, kind: str, helptext: str, rows: list[tuple[dict, float]]) -> None:
            lines.append(f"# HELP netops_serve_{metric} {helptext}")
            lines.append(f"# TYPE netops_serve_{metric} {kind}")
            for labels, value in rows:
                lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                lines.append(f"netops_serve_{metric}{{{lab}}} {float(value)!r}")

        with self.lock:
            jobs = {n: JobState(**asdict(js)) for n, js in self.jobs.items()}
        base = {n: {"job_name": n, "scope": self.scope or ""} for n in jobs}
        sched = self.schedule.jobs
        family("job_interval_seconds", "gauge", "How often the job is scheduled.",
               [(base[n], sched[n].interval) for n in jobs])
        family("job_last_success_timestamp_seconds", "gauge", "End of the job's last successful run (0: never).",
               [(base[n], js.last_success or 0) for n, js in jobs.items()])
        family("job_last_run_timestamp_seconds", "gauge", "End of the job's last run (0: never).",
               [(base[n], js.last_end or 0) for n, js in jobs.items()])
        family("job_last_duration_seconds", "gauge", "How long the job's last run took.",
               [(base[n], js.duration_s) for n, js in jobs.items() if js.duration_s is not None])
        family("job_last_exit_code", "gauge", "The last run's exit status (0 ok, 1 findings, 2 bad input, 3 partial, 4 failed).",
               [(base[n], js.last_rc) for n, js in jobs.items() if js.last_rc is not None])
        family("job_findings", "gauge", "Findings of the job's last successful run.",
               [(base[n], js.findings) for n, js in jobs.items() if js.findings is not None])
        family("job_failures_in_a_row", "gauge", "Failed runs since the last success.",
               [(base[n], js.failures) for n, js in jobs.items()])
        family("job_running", "gauge", "1 while a run of the job is in progress.",
               [(base[n], int(n in self.running)) for n in jobs])
        family("job_next_run_timestamp_seconds", "gauge", "When the job runs next.",
               [(base[n], js.next_due) for n, js in jobs.items() if js.next_due is not None])
        family("job_runs_total", "counter", "Runs of the job, by result.",
               [({**base[n], "result": r}, js.runs.get(r, 0)) for n, js in jobs.items() for r in RESULTS])
        family("time_seconds", "gauge", "The service's clock.", [({"scope": self.scope or ""}, now)])
        return "\n".join(lines) + "\n"


def _label(value: object) -> str:
    """A Prometheus exposition label value."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def serve_metrics(service: Service, listen: str):
    host, _, port = listen.rpartition(":")
    try:
        srv = metricshttp.server(host or "127.0.0.1", int(port), lambda: service.metrics().encode())
    except (OSError, ValueError) as e:
        raise UsageError(f"--listen {listen}: cannot listen there ({e})") from None
    return metricshttp.serve_in_background(srv)


# --- under systemd ---------------------------------------------------------------------------------
def unit(python: str, scope: str, listen: str, credentials: list[str] = (), state: Path = STATE_DEFAULT,
         schedule: str | None = None, inventory: str | None = None) -> str:
    """The systemd unit that runs the service on a province's monitor host (``playbooks/serve.yml``):
    the suite's Python there, restarted on failure, its state in a StateDirectory. No secret is in it:
    the jobs' credentials come as systemd credentials (``LoadCredential=`` of the 0600 files the playbook
    puts in a 0700 directory, one per :func:`needed` credential), which ``serve run`` hands its jobs
    (:func:`job_environment`)."""
    for name in credentials:
        _credential_name(name, "serve unit")
    if not state.is_relative_to("/var/lib"):
        raise UsageError(f"--state {state}: a unit's state directory lives under /var/lib")
    if "$" in python:  # systemd expands $ in arguments only: in the program's path '$$' would stay doubled
        raise UsageError(f"serve unit: python {python!r}: a '$' in the program's path cannot be written in a unit")
    words = [python, "-m", "jinbao_netops.cli", *(["-i", inventory] if inventory else []), "serve", "run",
             "--scope", scope, "--listen", listen, "--state", str(state), *(["--schedule", schedule] if schedule else [])]
    return "\n".join([
        "# managed by jinbao-netops playbooks/serve.yml",
        "[Unit]",
        "Description=jinbao-netops operations service (netops serve run)",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",  # a crash loop keeps being restarted (every RestartSec), never given up
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(escape.systemd(w) for w in words),
        "Restart=on-failure",
        "RestartSec=2",
        f"StateDirectory={state.relative_to('/var/lib')}",
        "StateDirectoryMode=0750",
        *(f"LoadCredential={n}:{CREDENTIALS_DIR}/{n}" for n in credentials),
        "KillMode=mixed",            # SIGTERM to the service, which ends its jobs in its own time ...
        "TimeoutStopSec=60",         # ... within --grace (30 s) and the jobs' Ctrl-C wait
        "UMask=0027",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        ""])


@dataclass(frozen=True)
class Credential:
    """One credential the service's jobs need, as ``playbooks/serve.yml`` ships it and ``serve run`` hands it
    on: ``file`` ones (SSH private keys, the known_hosts file) are shipped by content and the jobs get a path to
    them; the others are values. ``source``: where the controller holds a file credential."""
    name: str
    file: bool
    source: str | None = None


def needed(inv, scope: str | None) -> list[Credential]:
    """The credentials the jobs on ``scope`` read: every ``{env: NAME}`` reference of the credential
    profiles its devices connect with (an SSH key reference names a file), and the known_hosts file the
    jobs check host keys against (:data:`KNOWN_HOSTS`). Vault references are Ansible's, not the jobs'."""
    found: dict[str, bool] = {}
    for profile in sorted({inv.devices[d].credentials for d in inv.scope(scope)}):
        cred = inv.credentials.get(profile)
        if cred is None:
            continue
        snmp = [cred.snmp.auth_key, cred.snmp.priv_key, cred.snmp.community] if cred.snmp else []
        for ref, file in [(cred.ssh_key, True), (cred.password, False), (cred.db_password, False),
                          (cred.restic_password, False), *((r, False) for r in snmp)]:
            if ref is not None and ref.env:
                found[ref.env] = found.get(ref.env, False) or file
    return [Credential(n, f) for n, f in found.items()] + [Credential(KNOWN_HOSTS, True)]


def shipped(inv, scope: str | None, environ) -> list[Credential]:
    """What the playbook copies to the host: the needed credentials the controller has (an unset one is not
    shipped: the jobs needing it report it), each file credential with the controller's path to it."""
    from .access import known_hosts_path

    out = []
    for c in needed(inv, scope):
        source = known_hosts_path(environ) if c.name == KNOWN_HOSTS else environ.get(c.name)
        if source and (not c.file or Path(source).is_file()):
            out.append(Credential(c.name, c.file, source if c.file else None))
    return out


def job_environment(environ, files: set[str]) -> dict[str, str]:
    """The jobs' environment under systemd: the service's credentials (``$CREDENTIALS_DIRECTORY``, one file
    each) as the environment variables the inventory's ``{env: NAME}`` references read. A value credential is
    its file's content; a file credential (``files``: an SSH key) is the path to its file, which systemd made
    the service user's and unreadable to others, as ssh demands; the known_hosts file becomes the
    ``UserKnownHostsFile`` of ANSIBLE_SSH_COMMON_ARGS, the one place the suite reads it from."""
    where = environ.get("CREDENTIALS_DIRECTORY")
    if not where:
        return dict(environ)
    env = dict(environ)
    for f in sorted(Path(where).iterdir()):
        name = _credential_name(f.name, str(f))
        if name not in files and name != KNOWN_HOSTS:
            env[name] = f.read_text()
            continue
        st = f.stat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise UsageError(f"{f}: credential {name}: must be the service user's and unreadable to others "
                             f"(mode {st.st_mode & 0o777:o}); ssh refuses it 凭据文件权限不安全")
        if name == KNOWN_HOSTS:
            env["ANSIBLE_SSH_COMMON_ARGS"] = f"-o UserKnownHostsFile={escape.shell(f)} -o StrictHostKeyChecking=yes"
        else:
            env[name] = str(f)
    return env


def _credential_name(name: str, where: str) -> str:
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", name):
        raise UsageError(f"{where}: credential {name!r}: not an environment variable name (A-Z, 0-9, _) 凭据名称无效")
    return name


# --- the CLI ---------------------------------------------------------------------------------------
def register(nouns, common) -> None:
    p = nouns.add_parser("serve", help="the province's operations service: the suite's jobs on a schedule, "
                                       "their outcomes as Prometheus metrics")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def where(v):
        v.add_argument("--state", type=Path, metavar="DIR",
                       help=f"the service's state directory (default: ${STATE_ENV}, else {STATE_DEFAULT})")
        v.add_argument("--schedule", type=Path, metavar="FILE", help="the jobs and when they run (default: the suite's "
                                                                     "netops/schedule.yml)")

    r = verbs.add_parser("run", parents=[common], help="run the schedule in the foreground until SIGTERM or Ctrl-C "
                         "(systemd runs it so on the province's ops host)")
    r.add_argument("--scope", metavar="SITE", help="the site (a province) whose jobs this service runs; default: all")
    where(r)
    r.add_argument("--listen", default=LISTEN_DEFAULT, metavar="ADDR:PORT",
                   help=f"where Prometheus scrapes the job metrics (default {LISTEN_DEFAULT}; '' for none)")
    r.add_argument("--parallel", type=int, default=2, metavar="N", help="jobs running at once (default 2)")
    r.add_argument("--grace", type=float, default=30.0, metavar="S",
                   help="on SIGTERM, seconds a running job may take to finish before it is ended (default 30)")
    r.add_argument("--once", action="store_true",
                   help="run every job once now and exit with the worst result (a check of the schedule)")
    r.set_defaults(func=cmd_run)
    s = verbs.add_parser("status", parents=[common], help="each job: schedule, last and next run, result "
                         "(exit 1 when a job failed last or has not succeeded for two intervals)")
    where(s)
    s.set_defaults(func=cmd_status)
    n = verbs.add_parser("run-now", parents=[common], help="ask the running service to start JOB now (its next "
                         "tick, or when its current run ends) 立即运行作业")
    n.add_argument("job", metavar="JOB", help="a job of the schedule")
    where(n)
    n.add_argument("--wait", type=float, default=0, metavar="S",
                   help="wait up to S seconds for that run to end and show it as `serve status` does, exit 1 if it "
                        "failed (default: do not wait)")
    n.set_defaults(func=cmd_run_now)


def _state_dir(args) -> Path:
    return args.state or Path((args.environ or os.environ).get(STATE_ENV) or STATE_DEFAULT)


def cmd_run(args, out: Out) -> int:
    if args.parallel < 1:
        raise UsageError(f"--parallel {args.parallel}: must be at least 1")
    schedule = load_schedule(args.schedule)
    from jinbao_netops.inventory import load

    inv = load(args.inventory)
    inv.scope(args.scope)  # an unknown scope is a usage error now, not in every job
    state = _state_dir(args)
    if not state.parent.is_dir():
        raise UsageError(f"--state {state}: its parent directory does not exist")
    state.mkdir(exist_ok=True, mode=0o750)
    environ = job_environment(args.environ or os.environ, {c.name for c in needed(inv, args.scope) if c.file})
    service = Service(schedule, state, args.scope, args.inventory, args.parallel, environ=environ)
    server = serve_metrics(service, args.listen) if args.listen else None
    try:
        with procs.StopOnSignal() as stop:  # not an Event set by the handler: see StopOnSignal
            out.note(f"运维服务 serving {len(schedule.jobs)} jobs"
                     + (f", metrics at http://{args.listen}/metrics" if args.listen else ""))
            rc = service.run(stop, once=args.once, grace=args.grace)
    finally:
        if server:
            server.shutdown()
            server.server_close()
    if args.once:
        _show(out, schedule, service.jobs, state)
    return rc


def _row(name: str, job: Job, js: JobState, now: float) -> dict:
    stale = js.last_success is None or now - js.last_success > STALE_FACTOR * job.interval
    return {"job": name, "title": job.title, "interval_s": job.interval, "timeout_s": job.timeout,
            "last_start": _iso(js.last_start), "last_end": _iso(js.last_end), "last_result": js.last_result,
            "last_rc": js.last_rc, "duration_s": js.duration_s, "findings": js.findings,
            "last_success": _iso(js.last_success), "stale": stale, "failures_in_a_row": js.failures,
            "running": js.running, "next_run": _iso(js.next_due), "note": js.note, "runs": js.runs}


def _show(out: Out, schedule: Schedule, jobs: dict[str, JobState], state: Path) -> int:
    now = time.time()
    rows = [_row(n, job, jobs.get(n, JobState()), now) for n, job in schedule.jobs.items()]
    bad = [r for r in rows if r["last_result"] not in (None, "ok", "findings") or (r["stale"] and r["last_end"])]
    if out.json_mode:
        out.json({"ok": not bad, "state": str(state), "jobs": rows})
    else:
        out.table(f"运维服务作业 Service jobs ({state})",
                  ["作业 job", "名称 title", "间隔 every", "上次 last run", "结果 result", "用时 took", "发现 findings",
                   "下次 next run", "说明 note"],
                  [[r["job"], r["title"], f"{r['interval_s']} s", r["last_end"] or ("running" if r["running"] else "—"),
                    r["last_result"] or "—", "" if r["duration_s"] is None else f"{r['duration_s']:.1f} s",
                    r["findings"], r["next_run"] or "—", r["note"]] for r in rows])
    return FINDINGS if bad else OK


def cmd_status(args, out: Out) -> int:
    state = _state_dir(args)
    return _show(out, load_schedule(args.schedule), load_state(state), state)


def cmd_run_now(args, out: Out) -> int:
    schedule = load_schedule(args.schedule)
    if args.job not in schedule.jobs:
        raise UsageError(f"serve run-now {args.job!r}: no such job in the schedule (jobs: {', '.join(schedule.jobs)}) 无此作业")
    state = _state_dir(args)
    folder = state / "jobs" / args.job
    if not folder.is_dir():
        raise UsageError(f"{state}: no service has run job {args.job!r} with this state directory (--state) 服务未运行此作业")
    asked = time.time()
    write_atomic(folder / REQUEST, "", mode=0o640)
    if args.wait <= 0:
        out.note(f"已请求 job {args.job} asked to run now; see `netops serve status`")
        if out.json_mode:
            out.json({"ok": True, "job": args.job, "requested": _iso(asked)})
        return OK
    deadline = time.monotonic() + args.wait
    while (js := load_state(state).get(args.job, JobState())).running or (js.last_start or 0) < asked:
        if time.monotonic() > deadline:
            raise NetopsError(f"job {args.job}: its requested run did not end within {args.wait:g} s 作业未在时限内完成",
                              code=FAILED)
        time.sleep(0.5)
    return _show(out, Schedule(jobs={args.job: schedule.jobs[args.job]}), {args.job: js}, state)
