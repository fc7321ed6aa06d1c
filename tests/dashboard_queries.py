"""The PromQL a generated Grafana dashboard sends, for the unit tests (promtool, metric names) and the
lab test (each query against a real Prometheus): every template variable at its "All" value, as Grafana
interpolates it when nothing narrower is chosen."""
from __future__ import annotations


def _all(model: dict, text: str) -> str:
    variables = sorted((v for v in model["templating"]["list"] if v["type"] == "query"), key=lambda v: -len(v["name"]))
    for v in variables:  # the longest name first: $site never eats the start of a longer name
        text = text.replace(f"${v['name']}", v["allValue"])
    return text


def queries(model: dict) -> list[tuple[dict, str, str]]:
    """(panel, refId, expression) of every query of every panel."""
    return [(p, t["refId"], _all(model, t["expr"])) for p in model["panels"] for t in p["targets"]]


def variable_selectors(model: dict) -> list[tuple[dict, str, str]]:
    """(variable, series selector, label) of every ``label_values(selector, label)`` query variable."""
    out = []
    for v in model["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"]
            assert q.startswith("label_values(") and q.endswith(")"), q
            selector, label = q[len("label_values("):-1].rsplit(",", 1)
            out.append((v, _all(model, selector.strip()), label.strip()))
    return out
