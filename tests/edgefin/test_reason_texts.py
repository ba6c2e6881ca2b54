"""Reason texts from a TOML file (edgefin convert --reasons FILE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefin.errors import UsageError
from edgefin.reason_texts import load_reason_texts


def test_reads_field_tables(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[Income]\nlower = "Income too low"\n[Home]\ncategory = "Residence: {value}"\n', encoding="utf-8")
    assert load_reason_texts(p) == {"Income": {"lower": "Income too low"}, "Home": {"category": "Residence: {value}"}}
    p.write_text('[reasons.Income]\nhigher = "High"\n', encoding="utf-8")
    assert load_reason_texts(p) == {"Income": {"higher": "High"}}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[Income\n", "not valid TOML"),
        ('Income = "x"\n', r"\[Income\] must be a table"),
        ('[Income]\nup = "x"\n', "Income.up"),
    ],
)
def test_refuses_malformed_files(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "r.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=match):
        load_reason_texts(p)
    with pytest.raises(UsageError, match="cannot read"):
        load_reason_texts(tmp_path / "missing.toml")
