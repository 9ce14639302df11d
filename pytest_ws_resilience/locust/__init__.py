"""Load beyond one machine on Locust's distributed engine (the optional extra ``locust``).

`pytest_ws_resilience.locust.user.WsUser` is the Locust ``User`` that plays a
`pytest_ws_resilience.load.scenario.Scenario` with this package's client, tokens and
isolation detector; `pytest_ws_resilience.locust.distributed` starts a Locust master and
its workers as subprocesses from pytest (``ws_storm.distributed``) and reads their
statistics back into a `StormResult`; ``ws-resilience-load`` (`pytest_ws_resilience.
locust.cli`) runs a master or a worker by hand on each machine.

Importing Locust monkey-patches the whole process with gevent, so only the modules that
run inside Locust's processes (``user``, ``bridge``, ``locustfile``, ``cli``) import it;
the rest of this folder (the run's spec, the statistics, the process orchestration) is
plain Python that a pytest process may load. See docs/distributed-load.md.
"""
