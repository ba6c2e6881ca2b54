"""Hardware profiles: built-ins, TOML user profiles, helpful errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgefin.bench.profiles import BUILTIN, Profile, get_profile, load_profiles
from edgefin.errors import UsageError


def test_builtin_profiles_have_the_documented_limits() -> None:
    kiosk, teller = get_profile("kiosk-1core"), get_profile("teller-2core")
    assert (kiosk.cores, kiosk.threads, kiosk.memory_mib) == (1, 1, 256)
    assert (teller.cores, teller.threads, teller.memory_mib) == (2, 2, 1024)
    assert get_profile("unconstrained").memory_mib is None


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as err:
        get_profile("atm")
    for name in BUILTIN:
        assert name in str(err.value)


def test_user_profiles_from_toml_override_and_extend(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        '[profiles.atm]\ncores = 1\nthreads = 1\nmemory_mib = 192\ndescription = "ATM"\n'
        "[profiles.kiosk-1core]\ncores = 1\nmemory_mib = 300\n"
    )
    atm = get_profile("atm", f)
    assert (atm.cores, atm.memory_mib, atm.description) == (1, 192, "ATM")
    assert get_profile("kiosk-1core", f).memory_mib == 300
    with pytest.raises(UsageError, match="atm"):
        get_profile("nope", f)


@pytest.mark.parametrize(
    "body, needle",
    [
        ("[profiles.x]\ncores = 0\n", "cores"),
        ("[profiles.x]\nthreads = 'two'\n", "threads"),
        ("[profiles.x]\nmemory_mib = 10\n", "64 MiB"),
        ("[profiles.x]\nram = 5\n", "unknown key"),
        ("[profiles\n", "not valid TOML"),
    ],
)
def test_bad_profile_files_are_usage_errors(tmp_path: Path, body: str, needle: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(body)
    with pytest.raises(UsageError, match=needle):
        load_profiles(f)


def test_a_profile_wanting_more_cores_than_available_is_a_usage_error() -> None:
    n = len(os.sched_getaffinity(0))
    with pytest.raises(UsageError, match="cores"):
        Profile("big", cores=n + 1).cpus()
    assert Profile("one", cores=1).cpus() == sorted(os.sched_getaffinity(0))[:1]
