"""Each distribution's sdist holds only its own package, its README/CHANGELOG and its pyproject.toml (the
toolkit's used to carry the whole repository: tests, benchmarks, the runtime and the converters again).
``make dist`` lists the same contents."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from tests.runtime.test_wheel import REPO, _uv

#: top-level entries of each sdist besides PKG-INFO (written by the build) and the repository's .gitignore
#: (hatchling copies it into every sdist so a rebuild from the sdist excludes the same files)
EXPECTED = {
    "edgefin": {"edgefin", "README.md", "pyproject.toml"},
    "edgefin_converters": {"edgefin_converters", "pyproject.toml"},
    "edgefin_runtime": {"edgefin_runtime", "README.md", "CHANGELOG.md", "pyproject.toml"},
}


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """distribution -> the member paths of its sdist (below the ``name-version/`` folder)."""
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [_uv(), "build", "--all-packages", "--sdist", "--out-dir", str(out), "--quiet"],
        cwd=REPO,
        check=True,
        timeout=600,
    )
    found = {}
    for sdist in sorted(out.glob("*.tar.gz")):
        with tarfile.open(sdist) as tf:
            members = [m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name]
        found[sdist.name.rsplit("-", 1)[0]] = members
    return found


def test_each_sdist_holds_only_its_own_package(sdists: dict[str, list[str]]) -> None:
    assert set(sdists) == set(EXPECTED)
    for dist, members in sdists.items():
        top = {m.split("/", 1)[0] for m in members} - {"PKG-INFO", ".gitignore"}
        assert top == EXPECTED[dist], f"{dist}: {sorted(top - EXPECTED[dist])} should not be in its sdist"
        package = dist  # the import package carries the distribution's name
        assert any(m == f"{package}/__init__.py" for m in members), f"{dist}: its package is missing"
        assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc")], dist
    assert not [m for m in sdists["edgefin"] if m.startswith(("tests/", "benchmarks/", "runtime/", "converters/"))]
