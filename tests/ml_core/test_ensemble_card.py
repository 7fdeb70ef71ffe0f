"""docs/ENSEMBLE.md keeps one section per dataset: a run replaces its own and leaves the others."""

from __future__ import annotations

from pathlib import Path

from ml_core.ensemble import _write_section


def test_each_dataset_keeps_its_own_section(tmp_path: Path) -> None:
    card = tmp_path / "ENSEMBLE.md"
    _write_section(card, "ml-latest-small", "# Ensemble card (ml-latest-small)\n\nfirst run\n")
    _write_section(card, "ml-100k", "# Ensemble card (ml-100k)\n\nml-100k run\n")
    _write_section(card, "ml-latest-small", "# Ensemble card (ml-latest-small)\n\nsecond run\n")
    text = card.read_text()
    assert "second run" in text and "first run" not in text and "ml-100k run" in text
    assert text.index("(ml-100k)") < text.index("(ml-latest-small)")  # sorted by dataset
    assert text.count("<!-- ensemble:ml-100k -->") == 1 and text.count("<!-- /ensemble:ml-latest-small -->") == 1
