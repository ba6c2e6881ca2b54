"""The one exception tree of the runtime.

Every error the runtime raises derives from :class:`EdgefinRuntimeError`. Messages follow the
four-part rule: what happened, where (bundle member, field, row), what was expected, what to do.
The CLI maps the classes to exit codes in one place (``edgefin_runtime.cli.exit_code_for``).
"""

from __future__ import annotations


class EdgefinRuntimeError(Exception):
    """Base of every error raised by edgefin_runtime."""


# ---------------------------------------------------------------- bundles
class BundleError(EdgefinRuntimeError):
    """A bundle cannot be trusted or used; no Predictor is built from it."""


class BundleFormatError(BundleError):
    """The archive itself is malformed: not a zip, unexpected members, too large, bad JSON."""


class IntegrityError(BundleError):
    """A member's sha256 does not match the manifest (corruption or tampering)."""


class SignatureError(BundleError):
    """The bundle is unsigned, signed by an untrusted key, or its signature does not verify."""


class VersionError(BundleError):
    """The bundle needs a newer runtime, or uses a format version this runtime does not know."""


class ManifestError(BundleError):
    """The manifest is well-formed JSON but violates the manifest contract."""


class SelfTestError(BundleError):
    """The golden vectors did not reproduce their expected scores at load time."""


class BenchResultsError(EdgefinRuntimeError, ValueError):
    """A benchmark results file (``edgefin-run bench --output``) is unreadable or not of a known schema."""


class BackendError(EdgefinRuntimeError):
    """The inference engine is missing, cannot load the model, or failed while running it."""


# ---------------------------------------------------------------- inputs
class InputError(EdgefinRuntimeError, ValueError):
    """A record cannot be scored. ``field`` names the offending field (None for the record)."""

    def __init__(self, message: str, field: str | None = None, row: int | None = None) -> None:
        self.field = field
        self.row = row
        self.reason = message
        where = f"row {row}: " if row is not None else ""
        super().__init__(where + message)

    def at_row(self, row: int) -> InputError:
        """Return a copy of this error that also names the row it came from."""
        err = type(self)(self.reason, field=self.field, row=row)
        return err


class RecordTypeError(InputError):
    """The record is not a mapping of field names to values."""


class MissingFieldError(InputError):
    """A required field is absent or missing where the bundle does not allow missing values."""


class FieldTypeError(InputError):
    """A field has the wrong type (e.g. a string for a numeric field)."""


class NonFiniteError(InputError):
    """A numeric field is NaN or infinite where that cannot be scored."""


class UnknownFieldError(InputError):
    """The record has a field the bundle's schema does not know (strict policy)."""


class CategoryError(InputError):
    """A categorical value is malformed, or unseen in training under the strict policy."""


__all__ = [
    "EdgefinRuntimeError",
    "BundleError",
    "BundleFormatError",
    "IntegrityError",
    "SignatureError",
    "VersionError",
    "ManifestError",
    "SelfTestError",
    "BackendError",
    "InputError",
    "RecordTypeError",
    "MissingFieldError",
    "FieldTypeError",
    "NonFiniteError",
    "UnknownFieldError",
    "CategoryError",
]
