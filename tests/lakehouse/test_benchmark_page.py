"""The lakehouse benchmark page keeps committed runs that this machine did not repeat."""

from benchmarks.lakehouse import keep_other_runs

PREVIOUS = "# Lakehouse benchmark\n\nintro\n\n## ml-100k\n\nold 100k\n\n## synthetic event log, 10 events\n\nold 10\n"


def test_a_rerun_replaces_its_own_section_and_keeps_the_others():
    page = keep_other_runs("# Lakehouse benchmark\n\nintro\n\n## ml-100k\n\nnew 100k\n", PREVIOUS)
    assert "new 100k" in page and "old 100k" not in page
    assert page.count("## ml-100k") == 1 and "## synthetic event log, 10 events\n\nold 10" in page


def test_a_first_run_writes_just_its_page():
    page = "# Lakehouse benchmark\n\nintro\n\n## ml-100k\n\nnew\n"
    assert keep_other_runs(page, "") == page
