"""The cases of the security sweep, by category, and the worker that runs one category.

Every case is deterministic (derived from its index), so a crashed worker can be rerun with the
crashing index skipped. Outcomes: ``rejected`` (a typed EdgefinRuntimeError), ``accepted`` (the
bundle loaded), ``scored``/``bad-score`` (for inputs), ``untyped`` (any other exception: a defect).
Run by ``security_sweep.py``; not meant to be called directly.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import math
import mmap
import os
import random
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "runtime"), str(REPO)]

import numpy as np  # noqa: E402

import edgefin_runtime  # noqa: E402
from edgefin_runtime.bundle import pack_members, read_bundle  # noqa: E402
from edgefin_runtime.errors import EdgefinRuntimeError, InputError  # noqa: E402

Case = tuple[str, Callable[[], str]]
INPUT_CATEGORIES = ("hostile-input", "resource")
CATEGORIES = (
    "corruption",
    "truncation",
    "signature",
    "hostile-archive",
    "manifest-mutant",
    "manifest-fuzz",
    "version-skew",
    "hostile-input",
    "resource",
)


def _load(data: bytes, **kw: Any) -> str:
    edgefin_runtime.load(data, **kw)
    return "accepted"


def _load_and_verify(data: bytes) -> str:
    """load(), then read the acceptance set as ``edgefin-run verify`` does (its member is parsed on first use)."""
    edgefin_runtime.load(data).info.acceptance  # noqa: B018
    return "accepted"


# ---------------------------------------------------------------- bundles
def corruption(plan: dict[str, Any]) -> Iterator[Case]:
    xors = range(1, 256) if plan["long"] else (0x01, 0xFF)
    stride = plan.get("stride", 1)
    for item in plan["bundles"]:
        data = Path(item["path"]).read_bytes()
        kw = {"trusted_keys": [item["key"]]} if item.get("key") else {}
        for pos in range(0, len(data), stride):
            for x in xors:
                m = bytearray(data)
                m[pos] ^= x
                yield f"{Path(item['path']).name} byte {pos} ^ {x:#04x}", (lambda b=bytes(m), k=kw: _load(b, **k))


def truncation(plan: dict[str, Any]) -> Iterator[Case]:
    for item in plan["bundles"]:
        data = Path(item["path"]).read_bytes()
        kw = {"trusted_keys": [item["key"]]} if item.get("key") else {}
        for n in range(len(data)):
            yield f"{Path(item['path']).name} first {n} bytes", (lambda b=data[:n], k=kw: _load(b, **k))
        if plan["long"]:  # also drop the head: the zip end record survives, the start does not
            for n in range(1, len(data)):
                yield f"{Path(item['path']).name} without first {n}", (lambda b=data[n:], k=kw: _load(b, **k))


def signature(plan: dict[str, Any]) -> Iterator[Case]:
    """A consistent re-pack (valid zip, CRCs) with any manifest byte changed, a re-hashed model, the
    signature stripped or made by another key: all must fail the signature check."""
    from edgefin_runtime.signing import generate_keypair, sign_bundle

    item = next(i for i in plan["bundles"] if i.get("key"))
    b = read_bundle(Path(item["path"]).read_bytes())
    man, name, model, sig, acc = b.manifest_bytes, b.manifest.model.file, b.model_bytes, b.signature, b.acceptance_bytes
    keys = [item["key"]]
    xors = range(1, 256) if plan["long"] else (0x01,)
    for pos in range(len(man)):
        for x in xors:
            m = bytearray(man)
            m[pos] ^= x
            yield (
                f"manifest byte {pos} ^ {x:#04x}",
                functools.partial(_load, pack_members(bytes(m), name, model, sig, acc), trusted_keys=keys),
            )
    evil = model[:-1] + bytes([model[-1] ^ 1])
    doc = json.loads(man)
    doc["members"][name] = __import__("hashlib").sha256(evil).hexdigest()
    evil_man = json.dumps(doc, sort_keys=True, indent=1).encode()
    evil_bundle = pack_members(evil_man, name, evil, sig, acc)
    yield "model changed, manifest re-hashed", lambda: _load(evil_bundle, trusted_keys=keys)
    yield "signature stripped", lambda: _load(pack_members(man, name, model, None, acc), trusted_keys=keys)
    other, _ = generate_keypair()
    yield (
        "signed by an untrusted key",
        lambda: _load(sign_bundle(pack_members(man, name, model, None, acc), other), trusted_keys=keys),
    )


def hostile_archive(plan: dict[str, Any]) -> Iterator[Case]:
    from hostile_archives import cases

    for c in cases():
        yield c.kind, (lambda c=c: _load(c.build()))


def _rebundle(path: str, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    from tests.fixtures.repack import repack  # the acceptance set appears as the manifest's "acceptance"

    return repack(Path(path).read_bytes(), mutate)


def manifest_mutant(plan: dict[str, Any]) -> Iterator[Case]:
    from manifest_mutants import MUTANTS

    for item in plan["bundles"]:
        if item.get("key"):
            continue
        has_set = read_bundle(Path(item["path"]).read_bytes()).acceptance_bytes is not None
        for name, mutate, _err, _frag in MUTANTS:
            if name.startswith(("format_version", "min_runtime")):
                continue  # counted under version-skew
            if name.startswith("acceptance") and not has_set:
                continue  # the few-hundred-byte bundle carries no acceptance set to mutate
            case = f"{Path(item['path']).name}: {name}"
            yield case, (lambda p=item["path"], m=mutate: _load_and_verify(_rebundle(p, m)))


def manifest_fuzz(plan: dict[str, Any]) -> Iterator[Case]:
    """Random JSON-level mutations (the acceptance set's too, read as verify reads it), re-packed
    consistently. Loads that succeed are then compared with
    the original on probe records: 'accepted-same' or 'accepted-different' (only a signature
    can stop the latter; the sweep reports how many there are)."""
    from hostile_records import SPECIALS

    n = 50_000 if plan["long"] else 600
    item = next(i for i in plan["bundles"] if "onnx" in i["path"] and not i.get("key"))
    orig = edgefin_runtime.load(item["path"])
    b = read_bundle(item["path"])
    base = json.loads(b.manifest_bytes)
    if b.acceptance_bytes is not None:  # fuzzed too, as the manifest's "acceptance" (_rebundle)
        base["acceptance"] = json.loads(b.acceptance_bytes)
    leaves = _paths(base)
    json_safe = [v for v in SPECIALS if isinstance(v, (type(None), bool, int, str)) and v not in ("", "\x00")]
    probes = [dict(g.record) for g in orig.info.golden]

    def one(i: int) -> str:
        rng = random.Random(i)
        d = json.loads(json.dumps(base))
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = rng.choice(leaves)
            parent = d
            try:
                for k in path[:-1]:
                    parent = parent[k]
                v = rng.choice(json_safe + [rng.uniform(-2, 2), rng.random(), [], {}, 10**30])
                if isinstance(parent, dict) and rng.random() < 0.15:
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = v
            except (KeyError, IndexError, TypeError):
                pass
        p = edgefin_runtime.load(_rebundle(item["path"], lambda m: (m.clear(), m.update(d))))
        p.info.acceptance  # noqa: B018  # parsed on first read (as verify reads it): refused there if bad
        same = all(_same(orig, p, r) for r in probes)
        return "accepted-same" if same else "accepted-different"

    for i in range(n):
        yield f"random manifest mutation {i}", (lambda i=i: one(i))


def _same(a: Any, b: Any, rec: dict[str, Any]) -> bool:
    try:
        sa, sb = a.score(rec), b.score(rec)
    except InputError:
        return False
    return sa.probability == sb.probability and sa.decision == sb.decision


def _paths(o: Any, p: tuple = ()) -> list[tuple]:
    out = [p] if p else []
    if isinstance(o, dict):
        for k, v in o.items():
            out += _paths(v, p + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            out += _paths(v, p + (i,))
    return out


def version_skew(plan: dict[str, Any]) -> Iterator[Case]:
    from edgefin_runtime.version import __version__, version_tuple

    major, minor, patch = version_tuple(__version__)[:3]
    newer = [f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}", f"{major + 1}.0.0", "99.0", "999999.0.0.1"]
    for item in plan["bundles"]:
        if item.get("key"):
            continue
        for fv in (2, 3, 10, 2**31):
            yield (
                f"format_version {fv}",
                (lambda p=item["path"], fv=fv: _load(_rebundle(p, lambda d: d.__setitem__("format_version", fv)))),
            )
        for v in newer:
            yield (
                f"min_runtime_version {v}",
                (lambda p=item["path"], v=v: _load(_rebundle(p, lambda d: d.__setitem__("min_runtime_version", v)))),
            )


# ---------------------------------------------------------------- inputs
def hostile_input(plan: dict[str, Any]) -> Iterator[Case]:
    """Each case: one hostile record on every predictor (single-record path); every 25th case also a
    batch of 40 hostile records and the same rows as columns (rows in = scored + rejected, and the
    two paths agree)."""
    from hostile_records import record

    n = 200_000 if plan["long"] else 4000
    preds = [edgefin_runtime.load(i["path"]) for i in plan["bundles"] if not i.get("key")]
    names = list(preds[0].schema.names)

    def one(i: int) -> str:
        rng = random.Random(i)
        rec = record(rng, names)
        outcome = "rejected"
        for p in preds:
            try:
                s = p.score(rec)
            except InputError:
                continue
            if not (math.isfinite(s.probability) and 0.0 <= s.probability <= 1.0):
                return "bad-score"
            outcome = "scored"
        if i % 25 == 0:
            recs = [record(rng, names) for _ in range(40)]
            for p in preds:
                if not _batch_ok(p, recs, names):
                    return "batch-mismatch"
        return outcome

    for i in range(n):
        yield f"hostile record {i}", (lambda i=i: one(i))


def _batch_ok(p: Any, recs: list[Any], names: list[str]) -> bool:
    res = p.score_batch(recs)
    if len(res) != len(recs):
        return False
    single = []
    for r in recs:
        try:
            single.append(p.score(r).probability)
        except InputError:
            single.append(None)
    for r, s in zip(res, single):
        if (s is None) != (not r.ok) or (s is not None and r.score.probability != s):
            return False
    dicts = [r for r in recs if isinstance(r, dict)]
    cols = {n: [r.get(n) for r in dicts] for n in names}
    cs = p.score_columns(cols)
    ok = ~cs.rejected
    if len(cs) != len(dicts) or int(ok.sum()) + len(cs.errors) != len(dicts):
        return False
    return bool(np.isfinite(cs.probabilities[ok]).all() and np.isnan(cs.probabilities[~ok]).all())


def resource_cases(plan: dict[str, Any]) -> Iterator[Case]:
    """Inputs sized to exhaust memory or time: each must finish as scored or rejected, quickly."""
    preds = [edgefin_runtime.load(i["path"]) for i in plan["bundles"] if not i.get("key")]
    names = list(preds[0].schema.names)
    preds = [p for p in preds if list(p.schema.names) == names]  # same fields, so 'scored' means scored
    rows = 1_000_000 if plan["long"] else 100_000
    deep: Any = 1.0
    for _ in range(100_000):
        deep = [deep]
    big = {
        "100 MB string": "z" * 100_000_000,
        "100k-deep nested list": deep,
        "4000-digit integer": 10**3999,
        "10M-element list": [0.0] * 10_000_000,
        "numpy array of 10M": np.zeros(10_000_000),
    }
    for label, v in big.items():
        for n in names:
            yield f"{label} in {n}", (lambda n=n, v=v: _score_all(preds, {**{k: 1.0 for k in names}, n: v}))
    yield "record with 1M extra keys", lambda: _score_all(preds, {**{f"k{i}": i for i in range(1_000_000)}})
    yield f"batch of {rows // 2} hostile records", lambda: _big_batch(preds, names, rows // 2)
    yield f"columns of {rows} object rows", lambda: _big_columns(preds, names, rows)


def _score_all(preds: list[Any], rec: Any) -> str:
    out = "rejected"
    for p in preds:
        try:
            p.score(rec)
            out = "scored"
        except InputError:
            pass
    return out


def _big_batch(preds: list[Any], names: list[str], n: int) -> str:
    from hostile_records import record

    rng = random.Random(7)
    recs = [record(rng, names, huge=False) for _ in range(n)]
    for p in preds:
        res = p.score_batch(recs)
        if len(res) != n:
            return "batch-mismatch"
    return "scored"


def _big_columns(preds: list[Any], names: list[str], n: int) -> str:
    cols = {k: np.array([object()] * n, dtype=object) for k in names}
    for p in preds:
        cs = p.score_columns(cols)
        if len(cs) != n or int((~cs.rejected).sum()) + len(cs.errors) != n:
            return "batch-mismatch"
    return "rejected"


GENERATORS: dict[str, Callable[[dict[str, Any]], Iterator[Case]]] = {
    "corruption": corruption,
    "truncation": truncation,
    "signature": signature,
    "hostile-archive": hostile_archive,
    "manifest-mutant": manifest_mutant,
    "manifest-fuzz": manifest_fuzz,
    "version-skew": version_skew,
    "hostile-input": hostile_input,
    "resource": resource_cases,
}


# ---------------------------------------------------------------- the worker
def work(category: str, plan: dict[str, Any], skip: set[int], progress: Path, result: Path) -> None:
    with open(progress, "r+b") as fh:
        mark = mmap.mmap(fh.fileno(), 8)
        counts: collections.Counter[str] = collections.Counter()
        errors: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}
        slowest = (0.0, "")
        per_case: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        crash_at = int(os.environ.get("EDGEFIN_SWEEP_TEST_CRASH_AT", "-1"))  # proves crashes are seen
        for i, (desc, fn) in enumerate(GENERATORS[category](plan)):
            if i in skip:
                continue
            mark[:8] = struct.pack("<q", i)
            if i == crash_at:
                os.kill(os.getpid(), signal.SIGSEGV)
            t = time.perf_counter()
            try:
                outcome = fn()
            except InputError as exc:
                outcome = "rejected"
                errors[type(exc).__name__] += 1
            except EdgefinRuntimeError as exc:  # for inputs, only an InputError is a rejection
                outcome = "engine-error" if category in INPUT_CATEGORIES else "rejected"
                errors[type(exc).__name__] += 1
                if outcome == "engine-error":
                    examples.setdefault(outcome, f"{desc}: {str(exc)[:200]}")
            except Exception as exc:  # noqa: BLE001 - what the sweep exists to find
                outcome = "untyped"
                examples.setdefault(f"{type(exc).__name__}", f"{desc}: {str(exc)[:200]}")
            dt = time.perf_counter() - t
            if category == "resource":
                per_case.append({"case": desc, "outcome": outcome, "seconds": round(dt, 4)})
            if dt > slowest[0]:
                slowest = (dt, desc)
            counts[outcome] += 1
            if outcome not in ("rejected", "scored", "accepted-same"):
                examples.setdefault(outcome, desc)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {
            "counts": dict(counts),
            "errors": dict(errors),
            "examples": examples,
            "seconds": time.perf_counter() - t0,
            "slowest": {"seconds": slowest[0], "case": slowest[1]},
            "peak_rss_bytes": peak,
            "per_case": per_case,
        }
        result.write_text(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("category", choices=CATEGORIES)
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("--skip", default="")
    ap.add_argument("--progress", type=Path, required=True)
    ap.add_argument("--result", type=Path, required=True)
    a = ap.parse_args()
    skip = {int(s) for s in a.skip.split(",") if s}
    work(a.category, json.loads(a.plan.read_text()), skip, a.progress, a.result)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
