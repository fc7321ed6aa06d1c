"""Simulated SSH devices for tests and benchmarks: a paramiko server on many loopback addresses that
answers the platform table's health and configuration commands with recorded output, in an interactive shell (as
netmiko drives it) or as one exec (as OpenSSH's ``ssh host CMD`` does). Public-key login only.

``SshSim`` runs ``python -m jinbao_netops.testing.simssh CONFIG`` in its own process, so a benchmark can measure
(and pin) the simulator's CPU apart from the collector's.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from jinbao_netops.inventory.platforms import PLATFORMS


def keypair(path: Path) -> str:
    """Write an Ed25519 private key (OpenSSH format) to ``path``; return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


class SshSim:
    """Devices ``{name: (address, outputs)}`` on ``port``: ``outputs`` maps a command to its text."""

    def __init__(self, devices: dict[str, tuple[str, dict[str, str]]], port: int, user: str = "netops",
                 password: str | None = None):
        self.devices, self.port, self.user, self.password = devices, port, user, password
        self.dir = Path(tempfile.mkdtemp(prefix="netops-simssh-"))
        self.client_key = str(self.dir / "id_ed25519")
        self.known_hosts = str(self.dir / "known_hosts")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> SshSim:
        client_pub = keypair(Path(self.client_key))
        host_pub = keypair(self.dir / "host_key")
        Path(self.known_hosts).write_text("".join(f"[{a}]:{self.port} {host_pub}\n" for a, _ in self.devices.values()))
        cfg = self.dir / "sim.json"
        cfg.write_text(json.dumps({"port": self.port, "user": self.user, "client_pub": client_pub, "password": self.password,
                                   "host_key": str(self.dir / "host_key"),
                                   "devices": {n: [a, out] for n, (a, out) in self.devices.items()}}))
        log = self.dir / "sim.log"
        with open(log, "w") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "jinbao_netops.testing.simssh", str(cfg)], stdout=fh, stderr=fh,
                                         start_new_session=True)
        last = list(self.devices.values())[-1][0]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SSH simulator exited {self.proc.returncode}: {log.read_text()[-500:]}")
            try:
                socket.create_connection((last, self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("SSH simulator did not listen in time")

    KEY_ENV = "NETOPS_SIM_SSH_KEY"

    def environ(self) -> dict[str, str]:
        """What the access layer needs to reach the simulated devices: the key reference and known_hosts."""
        return {self.KEY_ENV: self.client_key, "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={self.known_hosts}"}

    def inventory(self, platforms: dict[str, str], extra: dict[str, str] | None = None):
        """An inventory of the simulated devices ({name: platform}; ``extra`` adds devices at other
        addresses, e.g. one nobody answers on) with one key credential, as the access layer reads it."""
        from jinbao_netops.inventory.model import Credentials, Device, SecretRef, Site
        from jinbao_netops.inventory.store import Inventory

        addrs = {n: a for n, (a, _) in self.devices.items()} | (extra or {})
        inv = Inventory(root=self.dir, credentials={"sim": Credentials(id="sim", username=self.user,
                                                                       ssh_key=SecretRef(env=self.KEY_ENV))},
                        sites={"sim": Site(id="sim", name="模拟 sim", level="ministry", block="127.0.0.0/8")})
        for i, (name, platform) in enumerate(sorted(platforms.items()), 1):
            network = PLATFORMS[platform].kind == "network"
            inv.devices[name] = Device(id=name, site="sim", role="router" if network else "server", platform=platform,
                                       management=addrs[name], credentials="sim",
                                       loopback=f"127.255.0.{i}" if network else None)
        inv.index()
        return inv

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


# --- the simulator process -----------------------------------------------------------------------
def serve(config: str) -> None:
    import paramiko

    cfg = json.loads(Path(config).read_text())
    host_key = paramiko.Ed25519Key.from_private_key_file(cfg["host_key"])
    allowed = cfg["client_pub"].split()[1]
    by_addr = {a: (name, out) for name, (a, out) in cfg["devices"].items()}

    class Server(paramiko.ServerInterface):
        """One connection: any number of session channels, each an exec (one command) or a shell."""

        def __init__(self):
            self.requests: dict[int, str | None] = {}  # channel id → exec command (None: a shell)
            self.ready: dict[int, threading.Event] = {}

        def _event(self, chanid: int) -> threading.Event:
            return self.ready.setdefault(chanid, threading.Event())

        def get_allowed_auths(self, username):
            return "publickey,password" if cfg["password"] else "publickey"

        def check_auth_publickey(self, username, key):
            ok = username == cfg["user"] and key.get_base64() == allowed
            return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

        def check_auth_password(self, username, password):
            ok = cfg["password"] and (username, password) == (cfg["user"], cfg["password"])
            return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

        def check_channel_request(self, kind, chanid):
            return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        def check_channel_pty_request(self, *a):
            return True

        def check_channel_shell_request(self, channel):
            self.requests[channel.get_id()] = None
            self._event(channel.get_id()).set()
            return True

        def check_channel_exec_request(self, channel, command):
            self.requests[channel.get_id()] = command.decode(errors="replace")
            self._event(channel.get_id()).set()
            return True

    def run(command: str, outputs: dict) -> tuple[str, int]:
        if command in outputs:
            return outputs[command], 0
        return f"-bash: {command.split()[0] if command.split() else ''}: command not found\n", 127

    def channel(chan, srv: Server, name: str, outputs: dict) -> None:
        try:
            if not srv._event(chan.get_id()).wait(20):
                return
            command = srv.requests[chan.get_id()]
            if command is not None:
                text, rc = run(command, outputs)
                chan.sendall(text.encode())
                chan.send_exit_status(rc)
                chan.close()
                return
            prompt = f"{cfg['user']}@{name}:~$ "
            chan.sendall(f"Linux {name} (simulated)\r\n{prompt}".encode())
            buf = b""
            while True:
                data = chan.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf or b"\r" in buf:
                    i = min(x for x in (buf.find(b"\n"), buf.find(b"\r")) if x >= 0)
                    line, buf = buf[:i].decode(errors="replace").strip(), buf[i + 1:].lstrip(b"\n")
                    if line == "exit":
                        chan.send_exit_status(0)
                        chan.close()
                        return
                    text = run(line, outputs)[0] if line else ""
                    chan.sendall(f"{line}\r\n{text.replace(chr(10), chr(13) + chr(10))}{prompt}".encode())
        except (EOFError, OSError, paramiko.SSHException):
            return

    def session(conn: socket.socket, address: str) -> None:
        name, outputs = by_addr[address]
        t = paramiko.Transport(conn)
        t.add_server_key(host_key)
        srv = Server()
        try:
            t.start_server(server=srv)
            while t.is_active():  # channels until the client hangs up, as a real sshd serves them
                chan = t.accept(1)
                if chan is not None:
                    threading.Thread(target=channel, args=(chan, srv, name, outputs), daemon=True).start()
        except (EOFError, OSError, paramiko.SSHException):
            return
        finally:
            t.close()

    sel = selectors.DefaultSelector()
    for address in by_addr:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, cfg["port"]))
        s.listen(64)
        sel.register(s, selectors.EVENT_READ, address)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        for key, _ in sel.select():
            try:
                conn, _ = key.fileobj.accept()
            except OSError:
                continue
            threading.Thread(target=session, args=(conn, key.data), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1])
