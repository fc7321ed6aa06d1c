"""Backup: device-config archive, restic and database dumps, disaster-recovery drills (issue 7)."""
