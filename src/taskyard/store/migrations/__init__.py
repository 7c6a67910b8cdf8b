"""Numbered migrations, one folder per dialect: ``NNNN_name.sql``, applied in order."""

from __future__ import annotations


def shipped(dialect: str) -> list[tuple[int, str]]:
    """The migrations of ``dialect`` (``sqlite`` or ``postgres``), in order."""
    from importlib import resources

    folder = resources.files(f"taskyard.store.migrations.{dialect}")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)
