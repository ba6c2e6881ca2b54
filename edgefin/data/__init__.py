"""Data layer: read files, infer the schema and target, split, fit preprocessing, check quality.

Applying preprocessing is the runtime's job (``edgefin_runtime.preprocess``); this package only
fits it. Later steps read a run's data back with :func:`load_split` and :func:`encode`.
"""

from .io import file_sha256, read_table
from .preprocessing import encode_frame, fit_preprocess, make_preprocessor
from .quality import quality_report
from .rundata import encode, encoded_split, load_split, run_preprocessor, run_schema, run_spec
from .schema import (
    TargetSpec,
    fit_schema,
    infer_kinds,
    resolve_target,
    schema_from_dict,
    schema_to_dict,
    target_vector,
    to_columns,
)
from .split import SplitIndices, split_indices

__all__ = [
    "read_table",
    "file_sha256",
    "TargetSpec",
    "resolve_target",
    "target_vector",
    "infer_kinds",
    "fit_schema",
    "to_columns",
    "schema_to_dict",
    "schema_from_dict",
    "SplitIndices",
    "split_indices",
    "fit_preprocess",
    "make_preprocessor",
    "encode_frame",
    "quality_report",
    "load_split",
    "run_schema",
    "run_spec",
    "run_preprocessor",
    "encode",
    "encoded_split",
]
