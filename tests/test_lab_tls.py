"""The lab's per-lab CA and node certificates (the log store's TLS identities): keys 0600 in root-only
directories, each certificate named by the inventory id and signed by this lab's CA only."""
from __future__ import annotations

import stat
import subprocess
from types import SimpleNamespace

from jinbao_netops.lab.runtime import Lab


def make(tmp_path, name):
    lab = Lab.__new__(Lab)
    lab.dir, lab.name = tmp_path / name, name
    lab.dir.mkdir(mode=0o700)
    lab._make_ca()
    return lab


def openssl(*args) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30).stdout


def test_node_certificates_are_named_by_device_and_signed_by_this_lab_only(tmp_path):
    a, b = make(tmp_path, "a"), make(tmp_path, "b")
    root = tmp_path / "root"
    a._node_cert(SimpleNamespace(device="gd-db1", mgmt="10.254.44.13/24",
                                 interfaces=[SimpleNamespace(address="10.44.0.10/24"), SimpleNamespace(address=None)],
                                 service_addresses=["10.44.0.100"]), root)
    tls = root / "etc/jinbao-netops/tls"
    for key in (tls / "node.key", a.dir / "tls/ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700 and stat.S_IMODE((a.dir / "tls").stat().st_mode) == 0o700
    text = openssl("x509", "-in", str(tls / "node.crt"), "-noout", "-text")
    # the business and service addresses too: a database client verifies the certificate against them
    assert "Subject: CN = gd-db1" in text and "DNS:gd-db1, IP Address:10.254.44.13, IP Address:10.44.0.10, IP Address:10.44.0.100" in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert (tls / "ca.crt").read_text() == (a.dir / "tls/ca.crt").read_text()
    assert "node.crt: OK" in openssl("verify", "-CAfile", str(a.dir / "tls/ca.crt"), str(tls / "node.crt"))
    assert "OK" not in openssl("verify", "-CAfile", str(b.dir / "tls/ca.crt"), str(tls / "node.crt"))
    assert not list((a.dir / "tls").glob("*.csr"))
