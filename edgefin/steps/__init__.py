"""The steps of a run directory: train -> compress -> convert -> bench -> report.

Every step is a module here with the same contract:

* ``Options``: a frozen dataclass holding everything that decides the step (no CLI names; the CLI
  maps its flags onto it in :mod:`edgefin.cli.options`); ``dataclasses.asdict(options)`` is what
  the pipeline fingerprints for resume;
* ``check(options)``: raises :class:`~edgefin.errors.UsageError` on bad options before anything runs;
* ``run(run_dir, options, reporter=None) -> Result``: does the step, writes its own outputs into the
  run directory and returns a ``Result`` whose ``to_dict()`` is what ``--json`` prints.

Progress goes to an :class:`edgefin.reporter.Reporter` (silent by default). The modules import the
heavy libraries (TensorFlow, scikit-learn) only when ``run`` is called, so the CLI can read options
and defaults without them. :mod:`edgefin.pipeline` composes the steps.
"""

from __future__ import annotations

STEPS = ("train", "compress", "convert", "bench", "report")

__all__ = ["STEPS"]
