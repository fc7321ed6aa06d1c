"""The strategy every play of the suite runs with (ansible.cfg ``strategy = mitogen_linear``): Ansible's own
``linear`` (each task on every host before the next task), with Mitogen's connection layer (the ``mitogen``
package, a dependency in pyproject.toml). Mitogen keeps one Python interpreter per host for the whole run and
sends it the modules, instead of one SSH exchange and one fresh interpreter per task and loop item: on the lab's
24 servers the first `site.yml` run went from about 8.6 to 3 minutes on two CPUs (docs/BENCHMARKS.md, "Server
hardening"). Connections Mitogen does not handle (network_cli for the vendors' devices) keep Ansible's own.

Mitogen ships this plugin in its package directory; this file makes it load from the repository's ansible.cfg
wherever the virtualenv is, instead of a path into site-packages that names the Python version.
"""
from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    pass
