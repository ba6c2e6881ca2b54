"""The train step: a CSV/Parquet file in, a complete run directory out (:func:`edgefin.train.train`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..reporter import Reporter

if TYPE_CHECKING:
    from ..rundir import RunDir


@dataclass(frozen=True)
class TrainOptions:
    """Everything that decides a training run (recorded in run.json)."""

    target: str
    positive: str | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    na_values: tuple[str, ...] = ()
    test_data: str | None = None
    validation_data: str | None = None
    test_size: float = 0.2
    validation_size: float = 0.2
    seed: int = 42
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.0
    l2: float = 3e-3
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 200
    patience: int = 20
    class_weight: bool = True
    linear: bool = True  # a linear path to the output, warm-started from the logistic regression
    encoding: str = "onehot"
    bins: int | str = "auto"
    threshold: str = "max-ks"
    augment: str = "none"
    #: protected attributes: never given as a reason code (edgefin_runtime.explain); convert reads them here
    protected: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


@dataclass(frozen=True)
class Options:
    """The train step: how to train, and on which data file (None: the run is already trained)."""

    training: TrainOptions
    data: str | None = None


@dataclass(frozen=True)
class Result:
    """The trained run and its metrics (metrics.json)."""

    run_dir: Path
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.metrics


def check(options: Options) -> None:
    """Refuse impossible training options (UsageError) before anything runs."""
    from ..metrics import parse_threshold
    from ..train import normalised

    parse_threshold(normalised(options.training).threshold)


def inputs(run_dir: RunDir, options: Options) -> list[Path]:
    """The data files the options name (the run directory holds nothing train reads)."""
    t = options.training
    return [Path(p) for p in (options.data, t.test_data, t.validation_data) if p]


def outputs(run_dir: RunDir) -> list[Path]:
    """Metrics, schema, preprocessing, the dense model and the split rows (run.json is not hashed)."""
    from ..rundir import SPLITS

    rd = run_dir
    return [
        rd.metrics_json,
        rd.schema_json,
        rd.preprocess_json,
        rd.model_path("dense"),
        *(rd.split_path(s) for s in SPLITS),
    ]


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Train on ``options.data`` into ``run_dir``."""
    from ..train import train

    if options.data is None:
        raise UsageError("the train step needs a data file (CSV or Parquet)")
    return Result(Path(run_dir), train(options.data, run_dir, options.training, reporter=reporter))


__all__ = ["TrainOptions", "Options", "Result", "check", "inputs", "outputs", "run"]
