"""Markdown layout of a :class:`~tfhsi.report.document.Document` (GitHub-flavoured tables)."""

from __future__ import annotations

from tfhsi.report.document import Document, Notice
from tfhsi.report.tables import Table

__all__ = ["render_markdown", "table_markdown"]

_ICONS = {"synthetic": "🧪", "quick": "⚠️", "leak": "ℹ️", "failed": "❌"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or " "


def table_markdown(table: Table, *, heading: str = "###") -> str:
    """A titled pipe table with its notes as a bullet list underneath."""
    align = {"left": ":---", "right": "---:", "center": ":---:"}
    lines = [f"{heading} {table.title}", ""] if heading else []
    lines.append("| " + " | ".join(_cell(c.name) for c in table.columns) + " |")
    lines.append("|" + "|".join(align[c.align] for c in table.columns) + "|")
    for row in table.rows:
        cells = [_cell(c) for c in row.padded(len(table.columns))]
        if row.kind == "failed":
            cells = [f"**{c}**" if c.strip() else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines)


def _notice(notice: Notice) -> str:
    return f"> {_ICONS.get(notice.kind, '')} **{notice.title}.** {notice.text}"


def render_markdown(doc: Document) -> str:
    """``report.md``: the stamp under the title and under every section heading."""
    stamp = f"> **{doc.stamp}**" if doc.stamp else ""
    out = [f"# {doc.title}", ""]
    if stamp:
        out += [stamp, ""]
    if doc.subtitle:
        out += [doc.subtitle, ""]
    for notice in doc.warnings:
        out += [_notice(notice), ""]
    out += [f"- **{key}:** {value}" for key, value in doc.facts]
    out.append("")
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        if stamp:
            out += [stamp, ""]
        for text in section.text:
            out += [text, ""]
        tables = [
            table_markdown(t, heading="" if t.title == section.title else "###") + "\n"
            for t in section.tables
        ]
        figures = [f"![{f.caption}]({f.link})\n\n*{f.caption}*\n" for f in section.figures]
        out += figures + tables if section.figures_first else tables + figures
    out += ["## Reproduce", ""]
    if stamp:
        out += [stamp, ""]
    if doc.command:
        out += ["```sh", doc.command, "```", ""]
    out += [f"- **{key}:** `{value}`" for key, value in doc.code]
    return "\n".join(out).rstrip() + "\n"
