"""Collectors: SNMP, SSH and database polling exported as Prometheus metrics (issue 5)."""
