"""What a stored device configuration leaves out: volatile lines, per platform, and secrets (the
platform table's secret-bearing lines, redacted as everywhere else: ``platforms.redact``).

Volatile lines (timestamps, uptime, banners of the show command) change without a configuration
change; dropping them means a commit in the archive is always a real change. Secrets (passwords,
keys, SNMP communities) are replaced by a marker so the archive can be read by anyone who may read
configurations. Every network platform of the platform table has a row (a unit test holds that).
"""
from __future__ import annotations

import re

from jinbao_netops.inventory.platforms import redact

# lines dropped entirely
VOLATILE: dict[str, list[str]] = {
    "frr": [r"^Building configuration\.\.\.$", r"^Current configuration:$"],
    "cisco_ios": [r"^Building configuration\.\.\.$", r"^Current configuration : \d+ bytes$",
                  r"^! (Last configuration change|NVRAM config last updated) at ", r"^ntp clock-period ",
                  r"^! No configuration change since last restart"],
    "huawei_vrp": [r"^!Software Version ", r"^!Last configuration was (updated|saved) at ", r"^!Time:"],
    "hp_comware": [r"^\s*#?\s*(current|system) time\b", r"^\s*uptime is "],
    "cisco_asa": [r"^: Saved$", r"^: Written by ", r"^: (Serial Number|Hardware): ", r"^Cryptochecksum:"],
}

_VOLATILE = {p: re.compile("|".join(f"(?:{r})" for r in rs)) for p, rs in VOLATILE.items()}


def clean(platform: str, text: str) -> str:
    """The text as stored: CRLF normalised, volatile lines dropped, secrets redacted, one final newline."""
    volatile = _VOLATILE.get(platform)
    out = []
    for line in redact(platform, text.replace("\r\n", "\n").replace("\r", "\n")).split("\n"):
        line = line.rstrip()
        if volatile is not None and volatile.search(line):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out) + "\n"
