"""The one way the suite reaches a device.

Every room (provisioning, backup, audit, collectors, drills, hardening) gets its sessions here:

* **credentials** are resolved from the inventory's references (``{env: NAME}``) in the run's
  environment (``Access(inv, environ=…)``; the process environment by default), never stored;
* **host keys** are checked strictly in one place, against the lab's or the operator's
  known_hosts: an unknown or changed key is a :class:`HostKeyError` for that device, naming the
  fingerprint it offered — never accepted, never a failure of the whole run;
* **sessions** are built from the platform table: an SSH exec per command (Linux hosts, and FRR,
  whose CLI is ``vtysh -c``), or an interactive vendor CLI through netmiko with paging off (VRP,
  Comware, IOS) — and reused per device within a run;
* **streams** (a database dump piped into restic, git and restic over SSH to a backup store) use
  the OpenSSH client, whose command line is built here too, with the same known_hosts, after the
  device's host key has been verified by a session of this run;
* a device whose inventory ``access`` lacks ssh is never logged in to: :class:`NoSshAccess` (a
  DeviceError) before any credential is read;
* every transport or authentication failure is a :class:`~jinbao_netops.errors.DeviceError` naming
  the device: callers report it for that device and go on with the others.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

import paramiko

from . import escape
from .errors import DeviceError, UsageError


class HostKeyError(DeviceError):
    """The device offered a host key that known_hosts does not hold (unknown or changed)."""


class NoSshAccess(DeviceError):
    """The inventory declares no SSH access for the device (its ``access`` lacks ssh, e.g. a v2c-only
    switch): the suite never logs in to it. Rooms that only read may report it as not read rather than
    unreachable; the message says which access the device does declare."""

    def __init__(self, device: str, access: list[str]):
        super().__init__(device, f"no SSH access declared (access: [{', '.join(access)}]) 未声明SSH访问方式")


def require_ssh(dev) -> None:
    """A NoSshAccess unless the inventory declares SSH access for ``dev`` (a Device)."""
    if "ssh" not in dev.access:
        raise NoSshAccess(dev.id, dev.access)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key (as ``ssh-keygen -lf`` prints it)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def secret(inv, profile: str, field: str, ref, environ: Mapping[str, str] | None = None) -> str:
    """The value a credential reference points at, or a one-line UsageError naming the file, profile
    and field. Environment references are read here; vault references are for Ansible to resolve."""
    where = f"{inv.root}: credentials {profile!r}: field {field!r}"
    if ref is None:
        raise UsageError(f"{where}: not set")
    if ref.vault:
        raise UsageError(f"{where}: vault reference {ref.vault!r} is resolved by Ansible only; use {{env: NAME}} here")
    value = (os.environ if environ is None else environ).get(ref.env)
    if not value:
        raise UsageError(f"{where}: environment variable {ref.env} is not set (for the lab: eval \"$(netops lab env)\")")
    return value


def known_hosts_path(environ: Mapping[str, str]) -> str | None:
    """The known_hosts file that ANSIBLE_SSH_COMMON_ARGS names (the lab's, via `netops lab env`),
    else the user's own; None when neither exists (every device is then unknown)."""
    for arg in shlex.split(environ.get("ANSIBLE_SSH_COMMON_ARGS", "")):
        if arg.startswith("UserKnownHostsFile="):
            return arg.split("=", 1)[1]
    default = Path.home() / ".ssh/known_hosts"
    return str(default) if default.exists() else None


# the host-key algorithms a known_hosts key type covers (an RSA key signs with SHA-2 too)
_ALGORITHMS = {"ssh-rsa": ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512")}


class _Verify(paramiko.MissingHostKeyPolicy):
    """Decides every host key itself (the client is given none, so paramiko always asks): the key
    known_hosts holds for the address is accepted, anything else is a HostKeyError."""

    def __init__(self, device: str, known: paramiko.HostKeys, path: str | None):
        self.device, self.known, self.path = device, known, path

    def missing_host_key(self, client, hostname, key):
        entry = self.known.lookup(hostname) or {}
        if entry.get(key.get_name()) == key:
            return
        if entry:
            raise HostKeyError(self.device, f"host key CHANGED for {hostname}: it offered {key.get_name()} "
                                            f"{fingerprint(key)}, {self.path} holds {', '.join(entry.keys())} — refused")
        raise HostKeyError(self.device, f"unknown host key for {hostname}: {key.get_name()} {fingerprint(key)} "
                                        f"is not in {self.path or 'any known_hosts file'} — refused")


@dataclass(frozen=True)
class Login:
    """How to log in to one device (the secret values resolved, so never printed or logged)."""
    device: str
    host: str
    port: int
    username: str
    key_file: str | None = None
    password: str | None = None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _guarded(method):
    """A session lost or timing out mid-command is a DeviceError naming the device, never a traceback."""

    @wraps(method)
    def run(self, *args, **kwargs):
        from netmiko.exceptions import NetmikoBaseException
        try:
            return method(self, *args, **kwargs)
        except DeviceError:
            raise
        except (OSError, EOFError, NetmikoBaseException, paramiko.SSHException) as e:
            raise DeviceError(self.device, f"{method.__name__} failed: {_first_line(e)}") from None
    return run


# how VRP ("Error: …"), Comware ("% Unrecognized command found at '^' position.") and IOS
# ("% Invalid input detected at '^' marker.") say a configuration line was not accepted
_REFUSED = re.compile(r"^\s*(% ?(Invalid|Unknown|Incomplete|Unrecognized|Wrong|Too many|Ambiguous)|Error:)")


class ExecSession:
    """One SSH exec channel per command over one kept connection (Linux hosts; FRR through
    ``vtysh -c``, the platform's ``cli_exec``)."""

    def __init__(self, access: Access, lg: Login, plat):
        self.device, self.plat, self.login = lg.device, plat, lg
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(access.policy(lg.device))
        try:
            self.client.connect(lg.host, port=lg.port, username=lg.username, key_filename=lg.key_file,
                                password=lg.password, timeout=access.timeout, banner_timeout=access.timeout,
                                auth_timeout=access.timeout, look_for_keys=False, allow_agent=False,
                                disabled_algorithms=access.host_key_algorithms(lg))
        except DeviceError:
            self.client.close()
            raise
        except (OSError, EOFError, paramiko.SSHException) as e:
            self.client.close()
            raise DeviceError(lg.device, f"unreachable over SSH at {lg.host}:{lg.port}: {_first_line(e)}") from None

    @property
    def alive(self) -> bool:
        t = self.client.get_transport()
        return bool(t and t.is_active())

    @_guarded
    def run(self, command: str, check: bool = True, timeout: float = 60, input: str | bytes | None = None) -> str:
        """A shell command on the device; stdout then stderr. ``check``: a non-zero exit is a DeviceError."""
        stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        if input is not None:
            stdin.write(input)
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        rc = stdout.channel.recv_exit_status()
        if check and rc != 0:
            msg = (err or out).strip().splitlines()
            raise DeviceError(self.device, f"{command.splitlines()[0][:80]!r} exited {rc}: {msg[-1] if msg else ''}")
        return out + err

    def cli(self, command: str, check: bool = True) -> str:
        """A CLI command (the platform's ``cli_exec`` wraps it; a Linux host runs it as is)."""
        wrap = self.plat.cli_exec
        return self.run(wrap.format(command=escape.shell(command)) if wrap else command, check=check)

    def show_running(self) -> str:
        return self.cli(self.plat.show_running)

    def show_saved(self) -> str:
        """The saved configuration (FRR: the integrated frr.conf, read from the host)."""
        return self.run(self.plat.show_saved)

    def configure(self, commands: list[str], arm_minutes: int | None = None) -> str:
        # vtysh runs a newline-separated -c as one session: configuration mode, then the lines
        return self.cli("\n".join([self.plat.config_mode, *commands]))

    def confirm(self) -> str:
        return ""

    def revert(self, commands: list[str]) -> list[str]:
        """Undo a change (no native safety here): apply ``commands``, the reverse of the change."""
        self.configure(commands)
        return commands

    def save(self) -> str:
        return self.cli(self.plat.save)

    def close(self) -> None:
        self.client.close()


class CliSession:
    """An interactive vendor CLI through netmiko, paging off, with the platform's native
    commit-confirm."""

    def __init__(self, access: Access, lg: Login, plat):
        from netmiko import ConnectHandler
        from netmiko.exceptions import NetmikoBaseException

        self.device, self.plat, self.login = lg.device, plat, lg
        params = {"device_type": plat.netmiko_device_type, "host": lg.host, "port": lg.port,
                  "username": lg.username, "conn_timeout": access.timeout, "auth_timeout": access.timeout,
                  "banner_timeout": access.timeout, "fast_cli": True, "ssh_strict": True,
                  "system_host_keys": False, "alt_host_keys": False, "allow_agent": False,
                  "disabled_algorithms": access.host_key_algorithms(lg), "auto_connect": False}
        if lg.key_file:
            params.update(use_keys=True, key_file=lg.key_file)
        else:
            params.update(use_keys=False, password=lg.password)
        self.conn = ConnectHandler(**params)
        self.conn.key_policy = access.policy(lg.device)  # the one host-key decision, not netmiko's
        try:
            self.conn._open()
        except DeviceError:
            self.conn.paramiko_cleanup()
            raise
        except (OSError, EOFError, NetmikoBaseException, paramiko.SSHException) as e:
            raise DeviceError(lg.device, f"unreachable over SSH at {lg.host}:{lg.port}: {_first_line(e)}") from None
        self.armed = False
        if plat.paging_off:
            self.cli(plat.paging_off)

    @property
    def alive(self) -> bool:
        try:
            return bool(self.conn.is_alive())
        except Exception:  # a dead transport may raise rather than say so
            return False

    @_guarded
    def cli(self, command: str, check: bool = True, timeout: float = 30) -> str:
        return self.conn.send_command(command, read_timeout=timeout)

    def run(self, command: str, check: bool = True, timeout: float = 30, input=None) -> str:
        if input is not None:
            raise DeviceError(self.device, "an interactive CLI takes no input stream")
        return self.cli(command, check=check, timeout=timeout)

    def show_running(self) -> str:
        return self.cli(self.plat.show_running, timeout=60)

    def show_saved(self) -> str:
        return self.cli(self.plat.show_saved, timeout=60)

    @_guarded
    def configure(self, commands: list[str], arm_minutes: int | None = None) -> str:
        """Apply in configuration mode; with ``arm_minutes`` the change reverts by itself unless confirmed."""
        p, lines, mode = self.plat, list(commands), None
        if arm_minutes and p.commit_confirm:
            arm = p.commit_confirm.format(minutes=arm_minutes, seconds=arm_minutes * 60)
            if p.commit_confirm_at == "enter":
                mode = arm
            elif p.commit_confirm_at == "first":
                lines.insert(0, arm)
            else:
                lines.append(arm)
            self.armed = True
        elif p.commit_confirm_at == "last" and p.confirm:
            lines.append(p.confirm)  # two-stage platform (VRP): nothing applies until committed
        out = self.conn.send_config_set(lines, config_mode_command=mode, read_timeout=30)
        refused = next((ln for ln in out.splitlines() if _REFUSED.match(ln)), None)
        if refused:
            raise DeviceError(self.device, f"the CLI refused a line: {refused.strip()}")
        return out

    def _armed_command(self, command: str) -> str:
        """Confirm or revert an armed change: in configuration mode unless arming entered it."""
        self.armed = False
        if self.plat.commit_confirm_at == "enter":
            return self.conn.send_command(command, read_timeout=30)
        return self.conn.send_config_set([command], read_timeout=30)

    @_guarded
    def confirm(self) -> str:
        """Make an armed change permanent."""
        return self._armed_command(self.plat.confirm) if self.armed else ""

    @_guarded
    def revert(self, commands: list[str]) -> list[str]:
        """Undo the change: the platform's native revert of the armed change where it has one (VRP
        ``abort trial``, IOS ``configure revert now``), else ``commands`` (the reverse lines) and a
        confirm, which also stops the armed timer. Returns what was sent."""
        if self.armed and self.plat.revert:
            self._armed_command(self.plat.revert)
            return [self.plat.revert]
        armed = self.armed
        self.configure(commands)
        self.confirm()
        return commands + ([self.plat.confirm] if armed else [])

    @_guarded
    def save(self) -> str:
        if self.conn.check_config_mode():  # VRPv8 sessions stay in system-view after a commit
            self.conn.exit_config_mode()
        ask = r"(?i)\[y/n\]|continue\?"  # VRP/Comware ask before overwriting the startup file
        out = self.conn.send_command(self.plat.save, expect_string=rf"{ask}|[>#\]]\s*$", read_timeout=60)
        if re.search(ask, out):
            out += self.conn.send_command("y", expect_string=r"[>#\]]\s*$", read_timeout=60)
        return out

    def close(self) -> None:
        try:
            self.conn.disconnect()
        except Exception:  # already gone: nothing left to release
            pass


Session = ExecSession | CliSession


def network_devices(inv, devices: list[str]) -> list[str]:
    """The network devices (routers, switches, firewalls) among ``devices``; none is bad input naming the scope."""
    net = [d for d in devices if inv.devices[d].platform_info.kind == "network"]
    if not net:
        raise UsageError(f"{inv.root}: --scope: no network device among {', '.join(devices) or 'none'}")
    return net


def read_each(access: Access, devices: list[str], read):
    """``read(session)`` on each device in turn, yielding ``(device, result, None)``, or ``(device, None,
    failure)`` for a device not read: ``{"status": "not_read"}`` where the inventory declares no SSH access
    (not a failure of the run), ``{"status": "unreachable"}`` for any other DeviceError; either with the
    reason as ``error``. The others go on."""
    for d in devices:
        try:
            yield d, read(access.session(d)), None
        except NoSshAccess as e:
            yield d, None, {"status": "not_read", "error": e.detail}
        except DeviceError as e:
            yield d, None, {"status": "unreachable", "error": e.detail}


class Access:
    """How one run reaches the inventory's devices.

    ``environ`` resolves the credential references (default: the process environment; the cycle
    passes the lab's); ``known_hosts`` is the file host keys are checked against (default: the one
    ANSIBLE_SSH_COMMON_ARGS names, else ~/.ssh/known_hosts); ``timeout`` bounds connecting and
    logging in. Sessions are kept per device until :meth:`close` (or the ``with`` block ends).
    """

    def __init__(self, inv, environ: Mapping[str, str] | None = None, known_hosts: str | None = None,
                 timeout: float = 10.0, port: int | None = None):
        self.inv = inv
        self.environ = os.environ if environ is None else environ
        self.known_hosts = known_hosts or known_hosts_path(self.environ)
        self.timeout = timeout
        self.port = port  # tests and simulators: every device on one non-standard port
        self._known = paramiko.HostKeys()
        if self.known_hosts and os.path.exists(self.known_hosts):
            self._known.load(self.known_hosts)
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- credentials ----------------------------------------------------------------------------
    def secret(self, profile: str, field: str, ref) -> str:
        return secret(self.inv, profile, field, ref, self.environ)

    def login(self, device: str) -> Login:
        """The device's login; a device without declared SSH access, or a credential that cannot be
        resolved, fails this device only."""
        dev = self.inv.devices[device]
        require_ssh(dev)
        cred = self.inv.credentials.get(dev.credentials)
        if cred is None:
            raise DeviceError(device, f"credentials {dev.credentials!r} not found")
        try:
            if cred.ssh_key:
                key, pw = self.secret(dev.credentials, "ssh_key", cred.ssh_key), None
            else:
                key, pw = None, self.secret(dev.credentials, "password", cred.password)
        except UsageError as e:
            raise DeviceError(device, str(e)) from None
        return Login(device, str(dev.management), self.port or 22, cred.username, key, pw)

    # --- host keys ---------------------------------------------------------------------------
    def policy(self, device: str) -> _Verify:
        return _Verify(device, self._known, self.known_hosts)

    def host_key_algorithms(self, lg: Login) -> dict:
        """Ask the device for a key of the type known_hosts holds for it (paramiko would otherwise
        take its own first choice, and a host known by its ECDSA key would look changed)."""
        entry = self._known.lookup(lg.host if lg.port == 22 else f"[{lg.host}]:{lg.port}")
        if not entry:
            return {}
        allowed = {a for t in entry.keys() for a in _ALGORITHMS.get(t, (t,))}
        every = paramiko.Transport._preferred_keys
        return {"keys": [k for k in every if k not in allowed]}

    # --- sessions ------------------------------------------------------------------------------
    def open(self, device: str) -> Session:
        """A new session to ``device`` (the caller closes it). The platform table decides the kind."""
        plat = self.inv.devices[device].platform_info
        lg = self.login(device)
        return (ExecSession if plat.session == "exec" else CliSession)(self, lg, plat)

    def session(self, device: str) -> Session:
        """The run's session to ``device``: opened on first use, reused after; a session that died
        (device reboot, idle timeout) is replaced."""
        with self._lock:
            lock = self._locks.setdefault(device, threading.Lock())
        with lock:
            s = self._sessions.get(device)
            if s is not None and s.alive:
                return s
            if s is not None:
                s.close()
            s = self._sessions[device] = self.open(device)
            return s

    def kept(self, device: str) -> bool:
        """True when this run holds a live session to ``device``."""
        with self._lock:
            s = self._sessions.get(device)
        return s is not None and s.alive

    def discard(self, device: str) -> None:
        """Forget (and close) the kept session of ``device``: the next use logs in afresh."""
        with self._lock:
            s = self._sessions.pop(device, None)
        if s is not None:
            s.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()

    # --- OpenSSH, for streams ---------------------------------------------------------------------
    def ssh_options(self, device: str, timeout: float = 10) -> list[str]:
        """OpenSSH client options for ``device``: its key, batch mode, strict host keys from the
        run's known_hosts. The device's host key is verified first by a session of this run, so an
        unknown or changed key fails here as a HostKeyError naming its fingerprint."""
        lg = self.login(device)
        if not lg.key_file:
            raise DeviceError(device, "a stream (backup, restore, drill) needs an SSH key credential; "
                                      "this profile has a password only")
        self.session(device)
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR",
                "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"UserKnownHostsFile={self.known_hosts or '/dev/null'}",
                "-i", lg.key_file, "-o", "IdentitiesOnly=yes", "-l", lg.username]
        if lg.port != 22:
            opts += ["-p", str(lg.port)]
        return opts

    def ssh_command(self, device: str, timeout: float = 10) -> str:
        """The same as one string without the host (GIT_SSH_COMMAND, restic's sftp wrapper)."""
        return " ".join(escape.shell(a) for a in ["ssh", *self.ssh_options(device, timeout)])

    def ssh_argv(self, device: str, timeout: float = 10) -> list[str]:
        """The OpenSSH command line that runs one shell line on ``device`` (append the line)."""
        return ["ssh", *self.ssh_options(device, timeout), self.login(device).host]

