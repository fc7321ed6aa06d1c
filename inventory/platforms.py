"""The one platform table: every vendor/OS difference the suite knows lives here.

Code that drives devices looks a platform up here instead of branching on its name.
Later capabilities extend the rows (show/save commands, parser templates, vendor OIDs).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    kind: str                 # "network" (a router/switch/firewall OS) or "server" (a Linux host)
    netmiko_device_type: str  # driver name for SSH sessions
    ansible_network_os: str | None  # set for network OSes only
    ansible_connection: str
    lab_image: str            # what the lab twin runs for this platform: "frr" router or "linux" host


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("huawei_vrp", "network", "huawei_vrpv8", "community.network.ce", "ansible.netcommon.network_cli", "frr"),
        Platform("hp_comware", "network", "hp_comware", "community.network.hpe_comware", "ansible.netcommon.network_cli", "frr"),
        Platform("cisco_ios", "network", "cisco_ios", "cisco.ios.ios", "ansible.netcommon.network_cli", "frr"),
        # FRR runs on Linux: Ansible reaches it over plain SSH and drives vtysh.
        Platform("frr", "network", "linux", "frr.frr.frr", "ssh", "frr"),
        Platform("debian", "server", "linux", None, "ssh", "linux"),
        Platform("openeuler", "server", "linux", None, "ssh", "linux"),
        Platform("kylin", "server", "linux", None, "ssh", "linux"),
    )
}
