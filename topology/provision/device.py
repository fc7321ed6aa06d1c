"""Sessions to a device: one interface over two transports, chosen by the platform table.

``cli_exec`` platforms (FRR: vtysh on Linux) are driven by one SSH exec per step (paramiko);
vendor CLIs (VRP, Comware, IOS) by an interactive netmiko session. Both: show the running config,
apply configuration commands (armed with the platform's commit-confirm where it has one),
confirm, save, run verification commands.
"""
from __future__ import annotations

import re
import shlex
from functools import wraps

import paramiko

from jinbao_netops.inventory import Device, Inventory
from jinbao_netops.inventory.access import known_hosts, secret


class DeviceError(Exception):
    """A device could not be reached, or refused a command."""


def login(inv: Inventory, dev: Device, port: int = 22) -> dict:
    cred = inv.credentials[dev.credentials]
    out = {"host": str(dev.management), "username": cred.username, "port": port}
    if cred.ssh_key:
        out["key_file"] = secret(inv, dev.credentials, "ssh_key", cred.ssh_key)
    else:
        out["password"] = secret(inv, dev.credentials, "password", cred.password)
    return out


# how VRP ("Error: …"), Comware ("% Unrecognized command found at '^' position.") and IOS
# ("% Invalid input detected at '^' marker.") say a configuration line was not accepted
_REFUSED = re.compile(r"^\s*(% ?(Invalid|Unknown|Incomplete|Unrecognized|Wrong|Too many|Ambiguous)|Error:)")


def _guarded(method):
    """A session lost or timing out mid-command is a DeviceError naming the device, never a traceback."""

    @wraps(method)
    def run(self, *args, **kwargs):
        from netmiko.exceptions import NetmikoBaseException
        try:
            return method(self, *args, **kwargs)
        except (OSError, EOFError, NetmikoBaseException, paramiko.SSHException) as e:
            raise DeviceError(f"device '{self.dev.id}': {method.__name__} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return run


class ExecSession:
    """One SSH exec per step; CLI commands wrapped by the platform's ``cli_exec`` (vtysh -c)."""

    def __init__(self, inv: Inventory, dev: Device, timeout: float = 10, port: int = 22):
        self.dev, self.plat = dev, dev.platform_info
        lg = login(inv, dev, port)
        self.client = paramiko.SSHClient()
        kh = known_hosts()
        if kh:
            self.client.load_host_keys(kh)
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self.client.connect(lg["host"], port=lg["port"], username=lg["username"], key_filename=lg.get("key_file"),
                                password=lg.get("password"), timeout=timeout, banner_timeout=timeout,
                                auth_timeout=timeout, look_for_keys=False, allow_agent=False)
        except (TimeoutError, OSError, paramiko.SSHException) as e:
            raise DeviceError(f"device '{dev.id}' ({lg['host']}): unreachable over SSH: {e}") from None

    @_guarded
    def run(self, command: str, check: bool = True, timeout: float = 60) -> str:
        _, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        rc = stdout.channel.recv_exit_status()
        if check and rc != 0:
            msg = (err or out).strip().splitlines()
            raise DeviceError(f"device '{self.dev.id}': {command.splitlines()[0][:80]!r} exited {rc}: {msg[-1] if msg else ''}")
        return out + err

    def cli(self, command: str, check: bool = True) -> str:
        return self.run(self.plat.cli_exec.format(command=shlex.quote(command)), check=check)

    def show_running(self) -> str:
        return self.cli(self.plat.show_running)

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


class NetmikoSession:
    """An interactive vendor CLI through netmiko, with the platform's native commit-confirm."""

    def __init__(self, inv: Inventory, dev: Device, timeout: float = 10, port: int = 22):
        from netmiko import ConnectHandler
        from netmiko.exceptions import (
            NetmikoAuthenticationException,
            NetmikoTimeoutException,
        )

        self.dev, self.plat = dev, dev.platform_info
        lg = login(inv, dev, port)
        kh = known_hosts()
        params = {"device_type": self.plat.netmiko_device_type, "host": lg["host"], "port": lg["port"],
                  "username": lg["username"], "conn_timeout": timeout, "auth_timeout": timeout,
                  "banner_timeout": timeout, "fast_cli": True, "ssh_strict": True,
                  "system_host_keys": False, "alt_host_keys": bool(kh), "alt_key_file": kh or ""}
        if "key_file" in lg:
            params.update(use_keys=True, key_file=lg["key_file"], allow_agent=False)
        else:
            params["password"] = lg["password"]
        try:
            self.conn = ConnectHandler(**params)
        except (OSError, NetmikoTimeoutException, NetmikoAuthenticationException, paramiko.SSHException) as e:
            raise DeviceError(f"device '{dev.id}' ({lg['host']}): unreachable over SSH: {e}") from None
        self.armed = False

    @_guarded
    def cli(self, command: str, check: bool = True) -> str:
        return self.conn.send_command(command, read_timeout=30)

    run = cli

    def show_running(self) -> str:
        return self.cli(self.plat.show_running)

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
            raise DeviceError(f"device '{self.dev.id}': the CLI refused a line: {refused.strip()}")
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
        self.conn.disconnect()


def connect(inv: Inventory, dev: Device, timeout: float = 10, port: int = 22):
    return (ExecSession if dev.platform_info.cli_exec else NetmikoSession)(inv, dev, timeout, port)
