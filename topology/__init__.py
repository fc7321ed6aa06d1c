"""Topology: the inventory as a graph, analysis, diagrams, link provisioning, and the lab twin."""

# what fails, in Chinese: the analysis's failure kinds as reports name them (light: the CLI imports it
# without loading networkx)
KIND_ZH = {"device": "设备", "link": "链路", "srlg": "共享风险组"}
