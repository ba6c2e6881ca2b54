"""What a user's model is, read from its content (never its name), and how each form is loaded.

=============== ==================================================== =========================
format          recognised by                                        flavour
=============== ==================================================== =========================
``keras``       a zip with ``config.json`` and ``metadata.json``     ``keras3`` or ``tf_keras``
                                                                     (``keras_version`` 3.x / 2.x)
``h5``          the HDF5 signature; root attribute ``keras_version`` ``tf_keras`` or ``keras3``
``saved_model`` a directory with ``saved_model.pb`` (never a run     ``tf_keras`` with
                directory)                                           ``keras_metadata.pb``, else none
``onnx``        a protobuf that parses as an ONNX ModelProto with    none
                an opset and a graph of nodes
=============== ==================================================== =========================

:func:`load_for_conversion` gives what ``edgefin_converters`` converts: a tf_keras model, a
:class:`~edgefin_converters.sources.GraphModel` (Keras 3, or a SavedModel's serving signature) or an
:class:`~edgefin_converters.sources.OnnxModel`. Anything else is a :class:`~edgefin.errors.ModelFormatError`
naming the path and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ModelError, ModelFormatError

Format = Literal["keras", "h5", "saved_model", "onnx"]
Flavour = Literal["keras3", "tf_keras"]

_HDF5 = b"\x89HDF\r\n\x1a\n"
EXPECTED = (
    "expected a Keras model file (.keras from Keras 3 or tf_keras, or HDF5 .h5), a SavedModel directory "
    "(with saved_model.pb) or an ONNX model file"
)


@dataclass(frozen=True)
class ModelFile:
    """A user's model as found on disk: its format, its Keras flavour (None when it has no Keras layers),
    the Keras version that wrote it, and the SHA-256 of its content (a directory: of every file in it)."""

    path: Path
    format: Format
    flavour: Flavour | None
    keras_version: str | None
    sha256: str

    @property
    def compressible_kind(self) -> bool:
        """Has Keras layers TFMOT could work on (tf_keras directly, Keras 3 through a rebuild)."""
        return self.flavour is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "format": self.format,
            "keras_flavour": self.flavour,
            "keras_version": self.keras_version,
            "sha256": self.sha256,
        }


def is_saved_model(path: str | os.PathLike[str]) -> bool:
    """A directory holding a SavedModel (``saved_model.pb`` or ``.pbtxt``): never a run directory."""
    p = Path(path)
    return p.is_dir() and ((p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file())


def detect(path: str | os.PathLike[str]) -> ModelFile:
    """Read ``path``'s content and say what model it holds; ModelFormatError when it is none of them."""
    p = Path(path)
    if not p.exists():
        raise ModelFormatError(f"model {p} not found; {EXPECTED}")
    if p.is_dir():
        if not is_saved_model(p):
            raise ModelFormatError(f"model {p} is a directory without saved_model.pb; {EXPECTED}")
        flavour: Flavour | None = "tf_keras" if (p / "keras_metadata.pb").is_file() else None
        return ModelFile(p, "saved_model", flavour, None, tree_sha256(p))
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelFormatError(f"model file {p} cannot be read ({exc})") from None
    if head.startswith(b"PK"):
        version = _keras_zip_version(p)
        return ModelFile(p, "keras", _flavour(version, p), version, file_sha256(p))
    if head == _HDF5:
        version = _h5_version(p)
        return ModelFile(p, "h5", _flavour(version, p), version, file_sha256(p))
    if _is_onnx(p):
        return ModelFile(p, "onnx", None, None, file_sha256(p))
    raise ModelFormatError(f"model file {p} is not a model edgefin can read ({_size(p)}); {EXPECTED}")


def _keras_zip_version(p: Path) -> str:
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            if not {"config.json", "metadata.json"} <= names:
                raise ModelFormatError(
                    f"model file {p} is a zip archive but not a Keras model (no config.json and metadata.json); "
                    f"{EXPECTED}"
                )
            meta = json.loads(zf.read("metadata.json"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFormatError(f"model file {p} is a damaged zip archive ({exc}); {EXPECTED}") from None
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    if not isinstance(version, str):
        raise ModelFormatError(f"model file {p}: metadata.json names no keras_version; {EXPECTED}")
    return version


def _h5_version(p: Path) -> str:
    import h5py  # type: ignore[import-untyped]

    try:
        with h5py.File(p, "r") as f:
            v = f.attrs.get("keras_version")
            has_model = "model_config" in f.attrs
    except OSError as exc:
        raise ModelFormatError(f"model file {p} is a damaged HDF5 file ({exc}); {EXPECTED}") from None
    if not has_model:
        raise ModelFormatError(
            f"model file {p} is an HDF5 file without a Keras model config (weights only?); save the whole "
            f"model with model.save(...)"
        )
    return v.decode() if isinstance(v, bytes) else str(v or "2")


def _flavour(version: str, p: Path) -> Flavour:
    major = version.split(".", 1)[0]
    if major == "3":
        return "keras3"
    if major == "2":
        return "tf_keras"
    raise ModelFormatError(f"model file {p} was written by Keras {version}; edgefin reads Keras 2 (tf_keras) and 3")


def _is_onnx(p: Path) -> bool:
    try:
        import onnx

        proto = onnx.load_from_string(p.read_bytes())
    except Exception:  # noqa: BLE001 - not a protobuf, or not an ONNX one
        return False
    return bool(proto.ir_version) and bool(proto.opset_import) and len(proto.graph.node) > 0


def _size(p: Path) -> str:
    try:
        return f"{p.stat().st_size} bytes"
    except OSError:
        return "unreadable"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(root: Path) -> str:
    """SHA-256 over every file of a directory: relative path and content, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(file_sha256(f).encode())
    return h.hexdigest()


# ---------------------------------------------------------------- loading
def load_for_conversion(mf: ModelFile) -> Any:
    """What the converters convert: a tf_keras model, a GraphModel or an OnnxModel."""
    from edgefin_converters.errors import ModelInputError
    from edgefin_converters.sources import from_keras3, from_onnx, from_saved_model

    label = f"model {mf.path}"
    try:
        if mf.format == "onnx":
            return from_onnx(mf.path.read_bytes(), label=label)
        if mf.format == "saved_model":
            return from_saved_model(str(mf.path), label=label)
        if mf.flavour == "keras3":
            from . import keras3

            return from_keras3(keras3.load(mf.path), label=label)
    except ModelInputError as exc:
        raise ModelFormatError(str(exc)) from None
    return load_tf_keras(mf)


def load_tf_keras(mf: ModelFile) -> Any:
    """The tf_keras model of a tf_keras .keras/.h5 file or a tf_keras SavedModel (ModelFormatError if none)."""
    from ..keras_io import load_user_tf_keras

    if mf.format in ("keras", "h5") and mf.flavour == "tf_keras":
        from ..keras_io import load_model

        if mf.format == "keras":
            return _usage(load_model, mf.path)
    if mf.flavour != "tf_keras":
        raise ModelFormatError(f"model {mf.path} has no tf_keras layers (format {mf.format}, flavour {mf.flavour})")
    try:
        return load_user_tf_keras(mf.path)
    except Exception as exc:  # noqa: BLE001 - h5py/SavedModel revival errors of a foreign file
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"cannot load tf_keras model {mf.path}: {type(exc).__name__}: {text}") from None


def _usage(load: Any, path: Path) -> Any:
    try:
        return load(path)
    except ModelError as exc:
        raise ModelFormatError(str(exc)) from None


__all__ = [
    "EXPECTED",
    "Format",
    "Flavour",
    "ModelFile",
    "detect",
    "file_sha256",
    "is_saved_model",
    "load_for_conversion",
    "load_tf_keras",
    "tree_sha256",
]
