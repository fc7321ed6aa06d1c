"""A minimal Chrome DevTools protocol client: real headless Chromium (Debian `chromium`) for page tests.

Only loopback: DevTools listens on 127.0.0.1, every host name and address other than localhost and
127.0.0.1 (and names a test maps to a loopback address) resolves to nothing, and background networking
is off, so a page reaches nothing but the server under test on loopback.
"""
from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

from jinbao_netops.files import write_atomic

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--disable-domain-reliability", "--no-pings", "--metrics-recording-only",
         "--window-size=1960,1000", "--lang=zh-CN"]


class Chromium:
    def __init__(self, hosts: dict[str, str] | None = None):
        """``hosts``: names resolved to loopback addresses (a DNS-rebinding page); all others resolve to nothing."""
        self.profile = Path(tempfile.mkdtemp(prefix="netops-chromium-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        rules = [f"MAP {name} {addr}" for name, addr in (hosts or {}).items() if addr.startswith("127.")]
        rules += ["MAP * ~NOTFOUND", "EXCLUDE localhost", "EXCLUDE 127.0.0.1"]
        self.proc = subprocess.Popen(["chromium", *FLAGS, f"--host-resolver-rules={', '.join(rules)}",
                                      "--remote-debugging-address=127.0.0.1",
                                      f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._id = 0
        self._conn = contextlib.ExitStack()
        try:
            pages = self._wait(lambda: [t for t in json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
                                        if t["type"] == "page"], 300)
            self.ws = self._conn.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
            self.call("Page.addScriptToEvaluateOnNewDocument", source=_RECORD_ERRORS)
        except BaseException:
            self.close()
            raise

    def _wait(self, cond, tries):
        last = None
        for _ in range(tries):
            assert self.proc.poll() is None, f"chromium exited {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}"
            try:
                if v := cond():
                    return v
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"chromium: DevTools not answering ({last})")

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def goto(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def eval(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr: str, seconds: float):
        """Poll a JS expression until truthy (returns its value) or fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if v := self.eval(expr):
                    return v
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"page: `{expr}` not true within {seconds:.0f} s")
            time.sleep(0.25)

    def errors(self) -> list[str]:
        """The page's uncaught errors and unhandled promise rejections so far."""
        return self.eval("window.__cdpErrors")

    def center(self, selector: str) -> tuple[float, float]:
        """The viewport coordinates of the middle of the first element matching ``selector``."""
        x, y = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                         " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return x, y

    def mouse(self, kind: str, x: float, y: float, **extra) -> None:
        """A real mouse event (``mousePressed``, ``mouseMoved``, ``mouseReleased``, ``mouseWheel``) at (x, y),
        handled by the page before this returns."""
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.mouse(kind, x, y, button="left", clickCount=1)

    def enter(self, text: str) -> None:
        """Type ``text`` into the focused element, then press Enter."""
        self.call("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        return write_atomic(path, base64.b64decode(data))

    def close(self) -> None:
        self._conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# installed in every page before its own scripts run: what errors() reports
_RECORD_ERRORS = """window.__cdpErrors = [];
addEventListener('error', e => window.__cdpErrors.push(String(e.message)));
addEventListener('unhandledrejection', e => window.__cdpErrors.push('unhandled rejection: ' + String(e.reason)));"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()
