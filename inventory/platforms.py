"""The one platform table: every vendor/OS difference the suite knows lives here.

Code that drives devices looks a platform up here instead of branching on its name; templates,
parsers and rule packs are per platform, the code that drives them is one.
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
    # --- network CLI (None for servers) ---
    paging_off: str | None = None      # disable the pager for the session
    show_running: str | None = None    # the running configuration
    save: str | None = None            # persist the running configuration
    # native safety for a push: a change that reverts itself unless confirmed
    commit_confirm: str | None = None  # how the change is armed, with {minutes}
    confirm: str | None = None         # how it is confirmed
    snmp_enterprise: str | None = None  # sysObjectID prefix that identifies the vendor
    # a CLI command run as one non-interactive SSH exec (no interactive session needed), with {command}
    cli_exec: str | None = None


_NET = "ansible.netcommon.network_cli"

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("huawei_vrp", "network", "huawei_vrpv8", "community.network.ce", _NET, "frr",
                 paging_off="screen-length 0 temporary", show_running="display current-configuration",
                 save="save", commit_confirm="commit trial {seconds}", confirm="commit",
                 snmp_enterprise="1.3.6.1.4.1.2011"),
        Platform("hp_comware", "network", "hp_comware", "community.network.hpe_comware", _NET, "frr",
                 paging_off="screen-length disable", show_running="display current-configuration",
                 save="save force", commit_confirm="configuration commit delay {minutes}",
                 confirm="configuration commit", snmp_enterprise="1.3.6.1.4.1.25506"),
        Platform("cisco_ios", "network", "cisco_ios", "cisco.ios.ios", _NET, "frr",
                 paging_off="terminal length 0", show_running="show running-config",
                 save="write memory", commit_confirm="configure terminal revert timer {minutes}",
                 confirm="configure confirm", snmp_enterprise="1.3.6.1.4.1.9"),
        # FRR runs on Linux: Ansible reaches it over plain SSH and drives vtysh (no pager with -c).
        Platform("frr", "network", "linux", "frr.frr.frr", "ssh", "frr",
                 show_running="show running-config", save="write memory",
                 snmp_enterprise="1.3.6.1.4.1.8072", cli_exec="vtysh -c {command}"),
        Platform("debian", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072"),
        Platform("openeuler", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072"),
        Platform("kylin", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072"),
    )
}
