"""``edgefin-run serve``: a local HTTP scoring service for branch apps that are not Python.

An optional extra (``pip install 'edgefin-runtime[serve]'``: uvicorn and Starlette); importing the
runtime never imports this package. Modules: :mod:`.app` (routes), :mod:`.config` (settings,
loopback rule, bearer auth), :mod:`.limits` (workers and queue), :mod:`.reload` (hot swaps),
:mod:`.metrics` (Prometheus text), :mod:`.accesslog` (JSON lines), :mod:`.openapi`, :mod:`.server`.
"""

from __future__ import annotations
