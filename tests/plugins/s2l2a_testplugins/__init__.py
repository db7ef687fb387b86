"""Test-only plug-ins of s2l2a, installed as their own package (tests/plugins/pyproject.toml).

- ``noop``: a processor that does no science (engine tests and benchmarks);
- ``toy``: a batch scheduler (rendered and parsed, never run);
- ``folder``: an acquisition source copying L1C products from a local folder.

Together the worked examples of docs/architecture.md "How to add a scheduler / processor / source"
(tests/test_plugins.py follows its steps).
"""
