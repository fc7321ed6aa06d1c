"""Collectors: SNMP, SSH and database polling exported as Prometheus metrics (issue 5)."""

# IF-MIB ifOperStatus / ifAdminStatus values: the one table the poller, the exporter and the health map use
IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
