"""The run directory: each step reads and extends it, so steps run alone or as a pipeline.

Layout (one place that names every artefact)::

    RUN_DIR/
      run.json                 what produced the run: options, data hash, step fingerprints
      data/schema.json         the input schema (edgefin_runtime.manifest.Schema as JSON)
      data/preprocess.json     the preprocessing spec (edgefin_runtime.manifest.PreprocessSpec)
      data/quality.json        the data-quality report
      data/{train,validation,test}.parquet   raw split rows, target column included
      models/dense.keras       trained dense model (tf_keras native format), or a user's model brought by
                               ``edgefin.ingest`` (tf_keras or Keras 3 .keras; models/dense.onnx for an ONNX
                               model, models/dense.savedmodel/ for a SavedModel without Keras layers)
      models/pruned.keras      pruned, stripped model
      models/clustered.keras   clustered (sparsity-preserving) model, only when compress clusters
      models/qat.keras         quantisation-aware (PQAT when pruned) model
      metrics.json             dense model metrics + threshold
      compress.json            compression report
      bundles/NAME.efb         one bundle per variant; bundles/parity.json
      report/report.{json,md,html}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunDirError

SPLITS = ("train", "validation", "test")
STAGES = ("dense", "pruned", "clustered", "qat")
#: other forms a run's dense model may be stored in (a user's model brought by edgefin.ingest)
DENSE_FORMS = (".onnx", ".savedmodel")


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> RunDir:
        return cls(Path(path))

    # ------------------------------------------------------------ paths
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def schema_json(self) -> Path:
        return self.root / "data" / "schema.json"

    @property
    def preprocess_json(self) -> Path:
        return self.root / "data" / "preprocess.json"

    @property
    def quality_json(self) -> Path:
        return self.root / "data" / "quality.json"

    def split_path(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.root / "data" / f"{split}.parquet"

    def model_path(self, stage: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        return self.root / "models" / f"{stage}.keras"

    def stored_model(self, stage: str) -> Path:
        """The file (or SavedModel directory) holding ``stage``'s model: ``model_path(stage)``, or for
        dense a user's ONNX model or SavedModel (``models/dense.onnx``, ``models/dense.savedmodel``).
        The ``.keras`` path when none exists."""
        path = self.model_path(stage)
        if stage == "dense" and not path.exists():
            for suffix in DENSE_FORMS:
                other = path.with_suffix(suffix)
                if other.exists():
                    return other
        return path

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def compress_json(self) -> Path:
        return self.root / "compress.json"

    @property
    def bundles_dir(self) -> Path:
        return self.root / "bundles"

    @property
    def parity_json(self) -> Path:
        return self.bundles_dir / "parity.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    # ------------------------------------------------------------ reading
    def require(self, path: Path, step: str) -> Path:
        if not path.exists():
            raise RunDirError(
                f"run directory {self.root}: {path.relative_to(self.root)} is missing; "
                f"run 'edgefin {step}' for this run directory first"
            )
        return path

    def read_json(self, path: Path, step: str) -> Any:
        self.require(path, step)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(
                f"run directory {self.root}: {path.relative_to(self.root)} is unreadable "
                f"({exc}); re-run 'edgefin {step}'"
            ) from None

    # ------------------------------------------------------------ run.json: its only writer
    def write_record(self, record: Mapping[str, object]) -> Path:
        """Write run.json (atomically): the one function that writes it; a step that starts a run
        (train, ingest) writes the whole record, later steps go through :meth:`update_record`."""
        from .atomic import write_json

        self.root.mkdir(parents=True, exist_ok=True)
        return write_json(self.run_json, dict(record))

    def update_record(self, change: Callable[[dict[str, Any]], None], step: str = "train") -> Path | None:
        """Read run.json, let ``change`` edit it in place, write it back; None (nothing written) when the
        run has no run.json. ``step`` names what writes run.json, for the error of an unreadable one."""
        if not self.run_json.exists():
            return None
        record = self.read_json(self.run_json, step)
        if not isinstance(record, dict):
            raise RunDirError(f"run directory {self.root}: run.json is not a JSON object; re-run 'edgefin {step}'")
        change(record)
        return self.write_record(record)

    # ------------------------------------------------------------ lineage
    def compressed_stages(self) -> tuple[str, ...] | None:
        """The stages compress recorded in compress.json, in STAGES order (dense first, the final one last), or
        None when the run has no compress record (trained or imported only, or a compression that did not
        finish: compress removes compress.json first and writes it last)."""
        if not self.compress_json.exists():
            return None
        rec = self.read_json(self.compress_json, "compress")
        stages = rec.get("stages") if isinstance(rec, dict) else None
        final = rec.get("final_stage") if isinstance(rec, dict) else None
        ordered = tuple(s for s in STAGES if isinstance(stages, dict) and s in stages)  # the file's keys are sorted
        if not isinstance(stages, dict) or len(ordered) != len(stages) or not ordered or final != ordered[-1]:
            raise RunDirError(
                f"run directory {self.root}: compress.json does not record its stages (expected "
                f"'stages' among {', '.join(STAGES)}, the last of them its 'final_stage'; got stages "
                f"{sorted(stages) if isinstance(stages, dict) else stages!r}, final_stage {final!r}); "
                f"re-run 'edgefin compress'"
            )
        return ordered

    def latest_stage(self) -> str:
        """The run's last stage: the final stage compress recorded; without a compress record, the last
        model file present (qat, else clustered, else pruned, else dense)."""
        recorded = self.compressed_stages()
        if recorded is not None:
            return recorded[-1]
        for stage in reversed(STAGES):
            if self.stored_model(stage).exists():
                return stage
        raise RunDirError(f"run directory {self.root}: no model found under models/; run 'edgefin train' first")

    def qat_float_stage(self) -> str:
        """The float stage whose variants go with a QAT model's int8 one: the pruned model the QAT model
        descends from (compress always prunes first), or dense for a run compress did not prune. Read from
        compress.json; without a compress record, pruned when models/pruned.keras exists, else dense."""
        recorded = self.compressed_stages()
        if recorded is None:
            return "pruned" if self.model_path("pruned").exists() else "dense"
        return "pruned" if "pruned" in recorded else "dense"
