"""What a stored device configuration leaves out: volatile lines and secrets, per platform, in one place.

Volatile lines (timestamps, uptime, banners of the show command) change without a configuration
change; dropping them means a commit in the archive is always a real change. Secrets (passwords,
keys, SNMP communities) are replaced by a marker so the archive can be read by anyone who may read
configurations. Every network platform of the platform table has a row (a unit test holds that).
"""
from __future__ import annotations

import re

REDACTED = "<redacted>"

# lines dropped entirely
VOLATILE: dict[str, list[str]] = {
    "frr": [r"^Building configuration\.\.\.$", r"^Current configuration:$"],
    "cisco_ios": [r"^Building configuration\.\.\.$", r"^Current configuration : \d+ bytes$",
                  r"^! (Last configuration change|NVRAM config last updated) at ", r"^ntp clock-period ",
                  r"^! No configuration change since last restart"],
    "huawei_vrp": [r"^!Software Version ", r"^!Last configuration was (updated|saved) at ", r"^!Time:"],
    "hp_comware": [r"^\s*#?\s*(current|system) time\b", r"^\s*uptime is "],
}

# (pattern, replacement): group 1 is kept, the secret after it is replaced
SECRETS: dict[str, list[str]] = {
    "frr": [r"^(\s*(?:enable )?password )\S+", r"^(\s*ip ospf authentication-key )\S+",
            r"^(\s*ip ospf message-digest-key \d+ md5 )\S+", r"^(\s*neighbor \S+ password )\S+",
            r"^(\s*key-string )\S+"],
    "cisco_ios": [r"^(\s*enable (?:secret|password)(?: \d+)? )\S+",
                  r"^(\s*username \S+ (?:privilege \d+ )?(?:secret|password)(?: \d+)? )\S+",
                  r"^(\s*snmp-server community )\S+", r"^(\s*(?:ip ospf )?(?:authentication-key|key-string)(?: \d+)? )\S+",
                  r"^(\s*(?:ip ospf )?message-digest-key \d+ md5(?: \d+)? )\S+", r"^(\s*neighbor \S+ password(?: \d+)? )\S+",
                  r"^(\s*(?:pre-shared-key|key)(?: \d+)? )\S+$", r"^(\s*password(?: \d+)? )\S+"],
    "huawei_vrp": [r"^(.*\b(?:cipher|irreversible-cipher|simple) )\S+",
                   r"^(\s*snmp-agent community (?:read|write) )(?!cipher |simple )\S+",
                   r"^(\s*snmp-agent usm-user v3 \S+ (?:authentication-mode|privacy-mode) \S+ )\S+"],
    "hp_comware": [r"^(.*\b(?:cipher|simple|hash) )\S+", r"^(\s*snmp-agent community (?:read|write) )(?!cipher |simple )\S+",
                   r"^(\s*snmp-agent usm-user v3 \S+ \S+ (?:authentication-mode|privacy-mode) \S+ )\S+"],
}

_VOLATILE = {p: re.compile("|".join(f"(?:{r})" for r in rs)) for p, rs in VOLATILE.items()}
_SECRETS = {p: [re.compile(r) for r in rs] for p, rs in SECRETS.items()}


def clean(platform: str, text: str) -> str:
    """The text as stored: CRLF normalised, volatile lines dropped, secrets redacted, one final newline."""
    volatile = _VOLATILE.get(platform)
    secrets = _SECRETS.get(platform, [])
    out = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if volatile is not None and volatile.search(line):
            continue
        for rx in secrets:
            line = rx.sub(lambda m: m.group(1) + REDACTED, line)
        out.append(line)
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out) + "\n"
