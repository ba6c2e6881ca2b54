"""The steps of a run directory: train -> compress -> convert -> bench -> report.

Every step is a module here with the same contract:

* ``Options``: a frozen dataclass holding everything that decides the step (no CLI names; the CLI
  maps its flags onto it in :mod:`edgefin.cli.options`); ``dataclasses.asdict(options)`` is what
  the pipeline fingerprints for resume;
* ``check(options)``: raises :class:`~edgefin.errors.UsageError` on bad options before anything runs;
* ``run(run_dir, options, reporter=None) -> Result``: does the step, writes its own outputs into the
  run directory and returns a ``Result`` whose ``to_dict()`` is what ``--json`` prints;
* ``inputs(run_dir, options) -> list[Path]``: the files it reads besides its options, and
  ``outputs(run_dir) -> list[Path]``: the files it writes, all of which must exist for it to count
  as done (named through :class:`edgefin.rundir.RunDir`; the pipeline hashes both for resume).

Progress goes to an :class:`edgefin.reporter.Reporter` (silent by default). The modules import the
heavy libraries (TensorFlow, scikit-learn) only when ``run`` is called, so the CLI can read options
and defaults without them. :mod:`edgefin.pipeline` composes the steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rundir import RunDir

STEPS = ("train", "compress", "convert", "bench", "report")


def trained_files(rd: RunDir) -> list[Path]:
    """What every step after train reads of it: the split rows, schema, preprocessing and metrics."""
    from ..rundir import SPLITS

    return [*(rd.split_path(s) for s in SPLITS), rd.schema_json, rd.preprocess_json, rd.metrics_json]


def matching(folder: Path, pattern: str) -> list[Path]:
    """The files in ``folder`` matching ``pattern``, sorted (an input set that may be empty)."""
    return sorted(folder.glob(pattern))


def at_least_one(folder: Path, pattern: str) -> list[Path]:
    """Like :func:`matching`, for an output: when nothing matches, the pattern itself stands in as a
    missing file, so a step that must write one or more such files is not done without them."""
    return matching(folder, pattern) or [folder / pattern]


__all__ = ["STEPS", "at_least_one", "matching", "trained_files"]
