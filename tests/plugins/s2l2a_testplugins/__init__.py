"""Test-only plug-ins of s2l2a, installed as their own package (tests/plugins/pyproject.toml).

- ``noop``: a processor that does no science (engine tests and benchmarks);
- ``toy``: a batch scheduler with a one-file queue, the worked example of docs/architecture.md
  "How to add a scheduler / processor / source" (tests/test_plugins.py follows its steps).
"""
