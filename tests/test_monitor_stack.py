"""`netops monitor up|down|status` without the lab: where the servers run, timing options, errors."""
from __future__ import annotations

from inventory import load
from monitoring import stack


def test_endpoints_name_every_province_and_the_ministry():
    eps = stack.endpoints(load(None))
    assert eps == {
        "guangdong": {"prometheus": "http://10.254.44.15:9090", "alertmanager": "http://10.254.44.15:9093", "monitor": "gd-mon1"},
        "sichuan": {"prometheus": "http://10.254.51.15:9090", "alertmanager": "http://10.254.51.15:9093", "monitor": "sc-mon1"},
        "ministry": {"prometheus": "http://10.254.0.22:9090", "alertmanager": "http://10.254.0.22:9093", "monitor": "bu-mon1"},
    }
