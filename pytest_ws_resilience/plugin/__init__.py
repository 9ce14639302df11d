"""The pytest glue, last layer of the package, split by process role as pytest-xdist is.

The file list is the diagram:

- ``entry``: the pytest11 entry point ``ws_resilience``: ``pytest_addoption``, and
  ``pytest_configure``, which loads the settings once and registers one role object
  plus the fixture modules;
- ``options``: the command-line options and ini keys with their help texts;
- ``roles``: the one rule telling single process, xdist controller and worker apart;
- ``handoff``: the one ``workerinput`` payload (controller to workers) and the one
  ``workeroutput`` payload (workers to controller);
- ``session``: `WsSession`, the hooks every process runs, each written once;
  ``controller`` and ``worker``: its subclasses for the xdist roles;
- feature parts the role objects call: ``services`` (the services runtime), ``report``
  (the run report's collector), ``scheduling`` (``concurrent_safe`` under xdist),
  ``redacting`` (reports and logs);
- fixtures: ``fixtures`` (loop-agnostic) and ``loop_fixtures`` (built for the ini
  ``ws_loop_scope``), which import no other glue than the shared state: ``watch`` (what
  one test watches) and ``stash`` (the stash keys);
- pure rules, light to import: ``markers``, ``service_rules``, ``xdist_groups``.

This package imports nothing itself, so importing a pure rule module loads neither
pytest nor the rest of the plugin.
"""
