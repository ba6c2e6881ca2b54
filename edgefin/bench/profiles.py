"""Hardware profiles: how many cores a benchmark worker may use, how many engine threads, how much memory.

A profile is applied inside a fresh worker process *before* the engine is imported
(``os.sched_setaffinity``, ``resource.setrlimit``), so cold start and peak memory are those of a
process that really ran under the constraint.

Memory is capped with ``RLIMIT_AS`` (address space), the only limit Linux enforces for every
allocation path (mmap included; ``RLIMIT_DATA`` covers mmap only since 4.7 and ``RLIMIT_RSS`` is
ignored). Address space is larger than resident memory, so the cap is a conservative stand-in for a
device's RAM. Measured on x86-64 (Python 3.11, the demo's credit model, 1 engine thread, the whole
benchmark including 891 test rows and batches of 1,024 records): ONNX Runtime variants peak at
~224 MiB address space / ~76 MiB resident, LiteRT variants at ~193 MiB / ~58 MiB. Both engines
start and score under the kiosk's 256 MiB cap; at 160 MiB their shared libraries can no longer be
mapped (an ImportError that the worker reports as "does not fit"). Threads cost address space too
(thread stacks, per-thread arenas): under 256 MiB with *two* engine threads ONNX Runtime no longer
fits (MemoryError at load) while LiteRT peaks at ~255.6 MiB; under 192 MiB with one thread LiteRT
still runs (~191.6 MiB) and ONNX Runtime does not. The Keras model needs ~2.4 GiB
of address space (~650 MiB resident) and would not fit any capped profile, so it runs uncapped and
the report says so. Peak RSS (VmHWM) is reported beside the cap.

User profiles come from TOML::

    [profiles.atm-arm]
    cores = 1          # CPUs to pin to (the first N the machine allows)
    threads = 1        # engine intra-op threads
    memory_mib = 192   # address-space cap; omit or 0 for none
    description = "ATM controller"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..tomlfile import read_toml


@dataclass(frozen=True)
class Profile:
    """A device class: cores to pin to, engine threads, optional address-space cap in MiB."""

    name: str
    cores: int | None = None  # None = every CPU the process may use
    threads: int = 1
    memory_mib: int | None = None  # None = no cap
    description: str = ""

    def cpus(self, available: set[int] | None = None) -> list[int]:
        """The CPU ids to pin to: the first ``cores`` of the ones this process may run on."""
        avail = sorted(available if available is not None else os.sched_getaffinity(0))
        if self.cores is None:
            return avail
        if self.cores > len(avail):
            raise UsageError(
                f"profile '{self.name}' wants {self.cores} cores, but only {len(avail)} "
                f"are available to this process ({avail}); use a smaller profile or `profile=unconstrained`"
            )
        return avail[: self.cores]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str = "profile") -> Profile:
        known = {"cores", "threads", "memory_mib", "description", "name"}
        extra = set(d) - known
        if extra:
            raise UsageError(
                f"{where}: unknown key(s) {sorted(extra)} in profile '{name}' (known: {sorted(known - {'name'})})"
            )
        cores = _pos_int(d.get("cores"), f"{where}.cores", optional=True)
        threads = _pos_int(d.get("threads", 1), f"{where}.threads")
        mem = d.get("memory_mib")
        memory = None if mem in (None, 0) else _pos_int(mem, f"{where}.memory_mib")
        if memory is not None and memory < 64:
            raise UsageError(f"{where}.memory_mib: {memory} MiB is below the 64 MiB a Python process needs to start")
        desc = d.get("description", "")
        if not isinstance(desc, str):
            raise UsageError(f"{where}.description: expected a string")
        return cls(name=name, cores=cores, threads=threads or 1, memory_mib=memory, description=desc)


def _pos_int(v: Any, where: str, *, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise UsageError(f"{where}: expected a positive integer, got {v!r}")
    return v


BUILTIN: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "kiosk-1core",
            cores=1,
            threads=1,
            memory_mib=256,
            description="self-service kiosk: 1 core, 1 engine thread, 256 MiB address space",
        ),
        Profile(
            "teller-2core",
            cores=2,
            threads=2,
            memory_mib=1024,
            description="teller terminal: 2 cores, 2 engine threads, 1 GiB address space",
        ),
        Profile(
            "unconstrained",
            cores=None,
            threads=1,
            memory_mib=None,
            description="every CPU of this machine, 1 engine thread, no memory cap",
        ),
    )
}


def load_profiles(path: str | os.PathLike[str]) -> dict[str, Profile]:
    """Read user profiles from a TOML file: ``[profiles.NAME]`` tables (or top-level tables)."""
    p = Path(path)
    data = read_toml(p, "profiles file")
    tables = data.get("profiles", data)
    if not isinstance(tables, dict) or not tables:
        raise UsageError(f"profiles file {p}: expected [profiles.NAME] tables, found none")
    out: dict[str, Profile] = {}
    for name, body in tables.items():
        if not isinstance(body, dict):
            raise UsageError(f"profiles file {p}: '{name}' is not a table; write [profiles.{name}]")
        out[name] = Profile.from_dict(name, body, where=f"{p}: profiles.{name}")
    return out


def get_profile(name: str, profiles_file: str | os.PathLike[str] | None = None) -> Profile:
    """Look a profile up by name (user file first, then built-ins); an unknown name lists the valid ones."""
    registry = dict(BUILTIN)
    if profiles_file:
        registry.update(load_profiles(profiles_file))
    if name not in registry:
        raise UsageError(
            f"unknown hardware profile '{name}'; valid profiles: {', '.join(sorted(registry))}"
            + ("" if profiles_file else " (define your own in a TOML file given as `profiles_file`)")
        )
    return registry[name]
