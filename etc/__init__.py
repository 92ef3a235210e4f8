"""Installed as ``rosey.examples`` (pyproject.toml maps it): the example config and prompt
ship inside the package, so ``rosey init-config`` works from a plain ``pip install``.
The rest of this folder (systemd, Prometheus, Alertmanager) is for the operator, not Python.
"""
