"""Marked sections of a generated doc: one benchmark rewrites its own part and leaves the others'."""

from __future__ import annotations

from pathlib import Path


def marked(name: str) -> tuple[str, str]:
    """The start and end markers of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def section_of(text: str, name: str) -> str | None:
    """Section ``name`` of ``text``, markers included, or None when it has none."""
    start, end = marked(name)
    if start not in text or end not in text:
        return None
    return text[text.index(start): text.index(end) + len(end)]


def write_section(path: Path, name: str, section: str, *, title: str) -> None:
    """Replace section ``name`` of ``path`` (``section`` carries its markers), or append it; a new file gets
    ``title`` as its heading."""
    text = path.read_text() if path.exists() else f"# {title}\n"
    old = section_of(text, name)
    text = text.replace(old, section) if old is not None else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
