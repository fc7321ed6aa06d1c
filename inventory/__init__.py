"""The source of truth: the four-level network model, its loader and validation, address
planning, the national-scale generator and the Ansible view."""
from .loader import DEFAULT_INVENTORY, InventoryError, load
from .model import Device, Level, Link, Role, Site
from .store import Inventory

__all__ = ["DEFAULT_INVENTORY", "Device", "Inventory", "InventoryError", "Level", "Link", "Role", "Site", "load"]
