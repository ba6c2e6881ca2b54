"""Exit codes of every edgefin command, and the one function that maps exceptions to them."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILURE = 1  # something went wrong that is not the user's input (a bug, an engine failure)
    USAGE = 2  # bad option, bad input file or data, missing run-directory step
    GATE_FAILED = 3  # a quality gate failed (parity, a bundle's golden self-test); reports were still written


def exit_status_for(exc: BaseException) -> ExitStatus:
    """Map an exception from the toolkit or the runtime to its exit status."""
    from edgefin_converters import errors as cv
    from edgefin_runtime import errors as rt

    from .. import errors as tk

    if isinstance(exc, (tk.QualityGateError, cv.ParityGateError, rt.SelfTestError)):
        return ExitStatus.GATE_FAILED
    if isinstance(exc, (cv.UnsupportedOpError, cv.UnknownVariantError, cv.ModelInputError)):
        return ExitStatus.USAGE
    if isinstance(exc, (tk.UsageError, tk.DataError, tk.RunDirError, tk.UnsupportedLayerError)):
        return ExitStatus.USAGE
    if isinstance(exc, (rt.InputError, rt.BundleError)):
        return ExitStatus.USAGE
    return ExitStatus.FAILURE
