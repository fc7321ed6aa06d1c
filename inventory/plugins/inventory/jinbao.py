"""Ansible inventory plugin: the suite's inventory model as Ansible groups and host variables."""
from __future__ import annotations

DOCUMENTATION = r"""
name: jinbao
plugin_type: inventory
short_description: jinbao-netops four-level network inventory
description:
  - Loads the jinbao-netops inventory (validated) and exposes site groups nested
    ministry → province → city → county, plus level_*, role_* and platform_* groups.
  - The level_*, role_* and platform_* groups hold only the hosts the suite reaches over SSH
    (the playbooks target them). A host whose inventory C(access) lacks ssh (a v2c-only switch
    declared with access [snmp], for one) is in its site group and in C(access_no_ssh) alone, so
    no play logs in to it and an operator sees it listed. Ad-hoc patterns on a site group or
    C(all) still match it; exclude it with C(:!access_no_ssh).
options:
  plugin:
    description: Marks this file as a jinbao inventory source.
    required: true
    choices: ['jinbao']
  path:
    description: Inventory directory or file; $NETOPS_INVENTORY wins over it; default is the embedded one.
    type: str
    required: false
"""

import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

try:  # ansible-core ≥ 2.19 templates only strings marked as trusted: the rest stays data
    from ansible.template import trust_as_template

    def untrusted(value):
        return value
except ImportError:  # older releases template every string not marked unsafe
    from ansible.utils.unsafe_proxy import wrap_var as untrusted

    def trust_as_template(value):
        return value


class InventoryModule(BaseInventoryPlugin):
    NAME = "jinbao"

    def verify_file(self, path):
        return super().verify_file(path) and os.path.basename(path) in ("jinbao.yml", "jinbao.yaml")

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        from jinbao_netops.inventory import InventoryError, load
        from jinbao_netops.inventory.ansible_view import CREDENTIAL_VARS, build

        src = os.environ.get("NETOPS_INVENTORY") or self.get_option("path")
        try:
            view = build(load(src))
        except InventoryError as e:
            raise AnsibleParserError("invalid jinbao inventory:\n" + str(e)) from None
        hostvars = view.pop("_meta")["hostvars"]
        view.pop("all")  # every group is reachable from Ansible's own 'all'; ungrouped stays empty
        for name in view:
            self.inventory.add_group(name)
        for name, group in view.items():
            for child in group.get("children", []):
                self.inventory.add_child(name, child)
            for host in group.get("hosts", []):
                self.inventory.add_host(host, group=name)
            for k, v in group.get("vars", {}).items():
                self.inventory.set_variable(name, k, untrusted(v))
        for host, hv in hostvars.items():
            for k, v in hv.items():
                # only the credential references are templates, lookups the view wrote itself; every
                # other value (names people typed among them) is data Ansible never evaluates
                self.inventory.set_variable(host, k, _trusted(v) if k in CREDENTIAL_VARS else untrusted(v))


def _trusted(value):
    """A credential reference, or a mapping of them (the administrators' keys), as templates."""
    if isinstance(value, dict):
        return {k: trust_as_template(v) for k, v in value.items()}
    return trust_as_template(value)
