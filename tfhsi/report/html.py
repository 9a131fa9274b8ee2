"""Self-contained HTML layout of a report: inline CSS, every image a ``data:`` URI, no scripts.

The file opens offline, can be mailed as one attachment and prints with the run's warning
stamp on every page.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from tfhsi.report.document import Document, Figure, Section
from tfhsi.report.tables import Table

__all__ = ["CSS", "data_uri", "page", "render_html", "table_html"]

CSS = """
:root { --ink:#1d2329; --muted:#5b6670; --line:#d9dee3; --head:#f1f4f7; --warn:#b3261e;
        --amber:#8a5300; --amber-bg:#fff4d6; --teacher:#f4f8ff; --failed:#fdecea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1480px; margin: 0 auto; padding: 0 28px 48px; }
h1 { font-size: 26px; margin: 18px 0 2px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
.subtitle { color: var(--muted); margin: 0 0 12px; }
.stamp { position: sticky; top: 0; z-index: 10; background: var(--warn); color: #fff;
         text-align: center; font-weight: 700; letter-spacing: .04em; padding: 7px 12px; font-size: 15px; }
.section-stamp { display: inline-block; background: var(--warn); color: #fff; font-weight: 700;
                 font-size: 12px; letter-spacing: .04em; padding: 2px 9px; border-radius: 3px; margin: 0 0 10px; }
.badge { display: inline-block; border: 4px solid var(--warn); color: var(--warn); font-size: 30px;
         font-weight: 800; letter-spacing: .08em; padding: 4px 18px; margin: 12px 14px 6px 0;
         transform: rotate(-2deg); }
.notice { border-left: 5px solid var(--muted); background: #f6f7f9; padding: 8px 12px; margin: 8px 0;
          max-width: 1100px; }
.notice.synthetic, .notice.failed { border-color: var(--warn); background: var(--failed); }
.notice.quick { border-color: #d08a00; background: var(--amber-bg); }
.notice.leak { border-color: #2f6fb3; background: #eef5fc; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 6px 0; }
table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 7px; vertical-align: top; }
th { background: var(--head); text-align: left; vertical-align: bottom; font-size: 12px; }
th.r { text-align: right; }
th.c { text-align: center; }
td { white-space: nowrap; }
td.r { text-align: right; }
td.c { text-align: center; }
td.l { text-align: left; }
td.w { white-space: normal; min-width: 9em; }
td[colspan] { white-space: normal; min-width: 16em; }
tr.teacher td { background: var(--teacher); }
tr.failed td { background: var(--failed); color: var(--warn); }
tr.partial td { background: #fff8e6; }
ul.notes { color: var(--muted); font-size: 12.5px; margin: 6px 0 14px; padding-left: 20px; max-width: 1100px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px; }
.figures.wide { grid-template-columns: 1fr; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figure.wide img { max-width: 1100px; }
figcaption { color: var(--muted); font-size: 12.5px; }
pre { background: #f6f7f9; padding: 10px 12px; overflow-x: auto; border: 1px solid var(--line); }
code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
@media print {
  .stamp { position: fixed; top: 0; left: 0; right: 0; }
  main { padding-top: 40px; max-width: none; }
  h2 { break-after: avoid; }
  figure, tr { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""


def data_uri(path: Path) -> str:
    """The PNG (or other image) at ``path`` as a ``data:`` URI."""
    kind = {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".svg": "image/svg+xml",
    }
    mime = kind.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def table_html(table: Table, *, heading: str = "h3") -> str:
    """A ``<table>`` with its title and notes; failed rows tinted red, the teacher blue."""
    align = {"left": "l", "right": "r", "center": "c"}
    head = "".join(f'<th class="{align[c.align]}">{escape(c.name)}</th>' for c in table.columns)
    body = []
    for row in table.rows:
        classes = [align[c.align] + (" w" if c.wrap else "") for c in table.columns]
        tds = "".join(
            f'<td class="{cls}">{escape(cell)}</td>'
            for cls, cell in zip(classes, row.cells[:-1], strict=False)
        )
        span = len(table.columns) - len(row.cells) + 1
        last = escape(row.cells[-1]) if row.cells else ""
        if span > 1:
            tds += f'<td class="l" colspan="{span}">{last}</td>'
        elif row.cells:
            tds += f'<td class="{classes[len(row.cells) - 1]}">{last}</td>'
        body.append(f'<tr class="{row.kind}">{tds}</tr>' if row.kind else f"<tr>{tds}</tr>")
    parts = [f"<{heading}>{escape(table.title)}</{heading}>"] if heading else []
    parts.append(
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )
    if table.notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ul>"
        )
    return "\n".join(parts)


def _figure(figure: Figure, *, wide: bool) -> str:
    cls = ' class="wide"' if wide else ""
    alt = escape(figure.caption, quote=True)
    return (
        f'<figure{cls}><img alt="{alt}" src="{data_uri(figure.path)}">'
        f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
    )


def _section(section: Section, stamp: str) -> str:
    parts = [f'<section id="{escape(section.anchor, quote=True)}"><h2>{escape(section.title)}</h2>']
    if stamp:
        parts.append(f'<div class="section-stamp">{escape(stamp)}</div>')
    parts += [f"<p>{escape(t)}</p>" for t in section.text]
    tables = [
        table_html(t, heading="" if t.title == section.title else "h3") for t in section.tables
    ]
    figures = []
    if section.figures:
        cls = "figures wide" if section.wide_figures else "figures"
        inner = "".join(_figure(f, wide=section.wide_figures) for f in section.figures)
        figures.append(f'<div class="{cls}">{inner}</div>')
    parts += figures + tables if section.figures_first else tables + figures
    parts.append("</section>")
    return "\n".join(parts)


def page(title: str, body: str, *, stamp: str = "") -> str:
    """A complete HTML page with the inline stylesheet and, if given, the sticky warning stamp."""
    banner = f'<div class="stamp">{escape(stamp)}</div>\n' if stamp else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>{banner}<main>\n{body}\n</main></body></html>\n"
    )


def render_html(doc: Document) -> str:
    """``report.html`` for one run."""
    parts = [f"<h1>{escape(doc.title)}</h1>"]
    if doc.subtitle:
        parts.append(f'<p class="subtitle">{escape(doc.subtitle)}</p>')
    badges = [n for n in doc.warnings if n.kind in ("synthetic", "quick")]
    if badges:
        parts.append(
            "<div>"
            + "".join(f'<span class="badge">{escape(n.title)}</span>' for n in badges)
            + "</div>"
        )
    parts += [
        f'<div class="notice {n.kind}"><strong>{escape(n.title)}.</strong> {escape(n.text)}</div>'
        for n in doc.warnings
    ]
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in doc.facts)
    parts.append(f'<dl class="facts">{facts}</dl>')
    toc = " · ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in doc.sections)
    parts.append(f'<nav>{toc} · <a href="#reproduce">Reproduce</a></nav>')
    parts += [_section(s, doc.stamp) for s in doc.sections]
    repro = ['<section id="reproduce"><h2>Reproduce</h2>']
    if doc.stamp:
        repro.append(f'<div class="section-stamp">{escape(doc.stamp)}</div>')
    if doc.command:
        repro.append(f"<pre><code>{escape(doc.command)}</code></pre>")
    env = "".join(f"<dt>{escape(k)}</dt><dd><code>{escape(v)}</code></dd>" for k, v in doc.code)
    repro.append(f'<dl class="facts">{env}</dl></section>')
    parts.append("\n".join(repro))
    parts.append("<footer>Written by tfhsi report from the run record results.json.</footer>")
    return page(doc.title, "\n".join(parts), stamp=doc.stamp)
