"""Topology: the inventory as a graph, analysis, diagrams, link provisioning, and the lab twin."""
