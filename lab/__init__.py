"""The lab twin: any valid inventory realised on this machine as systemd-nspawn nodes in their
own network namespaces, joined by veth links, running FRR, sshd, snmpd and their services."""
