"""The bench's bare engine runs on the kernels the bundle's manifest names, like the runtime does."""

from __future__ import annotations

import pytest

from edgefin_runtime.benchmark import engines


@pytest.mark.parametrize("kernels, expect_ref", [("default", False), ("reference", True)])
def test_bare_litert_engine_uses_the_manifests_kernels(monkeypatch, kernels: str, expect_ref: bool) -> None:
    from ai_edge_litert import interpreter

    seen: dict[str, object] = {}

    class Fake:
        def __init__(self, **kw: object) -> None:
            seen.update(kw)

        def allocate_tensors(self) -> None: ...

        def get_input_details(self) -> list[dict[str, object]]:
            return [{"shape": [1, 3], "index": 0}]

        def get_output_details(self) -> list[dict[str, object]]:
            return [{"index": 1}]

    monkeypatch.setattr(interpreter, "Interpreter", Fake)
    engines.bare_engine("litert", b"model", 1, kernels=kernels)
    got = seen.get("experimental_op_resolver_type")
    assert (got == interpreter.OpResolverType.BUILTIN_REF) is expect_ref
