"""The report as one self-contained HTML page (figures inlined as PNG data) and a Markdown summary."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from maskscope.report.figures import Figure

Tables = dict[str, list[dict[str, Any]]]


def render_html(title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "figure{margin:2em 0}img{max-width:100%}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for heading, rows in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts += [f"<th>{html.escape(key)}</th>" for key in rows[0]]
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row.values()) + "</tr>")
        parts.append("</table>")
    for figure in figures:
        data = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f'<figure id="{figure.name}"><h2>{html.escape(figure.title)}</h2>'
            f'<img class="figure" alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    # Marks each figure once the browser has decoded it: a check anyone (and the tests) can read.
    parts.append(
        "<script>window.addEventListener('load',()=>{for(const img of document.images)"
        "{img.dataset.rendered=String(img.complete&&img.naturalWidth>0)}});</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> str:
    lines = [f"# {title}", "", *notes, ""]
    for heading, rows in tables.items():
        lines += [f"## {heading}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
        lines.append("")
    for figure in figures:
        lines += [f"## {figure.title}", "", f"![{figure.title}](figures/{figure.name}.png)", "", figure.caption, ""]
    return "\n".join(lines)


def write_report(directory: Path, title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> None:
    """index.html (self-contained), summary.md, and the figures as PNG files for the Markdown."""
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    for figure in figures:
        (directory / "figures" / f"{figure.name}.png").write_bytes(figure.png)
    (directory / "index.html").write_text(render_html(title, figures, tables, notes), encoding="utf-8")
    (directory / "summary.md").write_text(render_markdown(title, figures, tables, notes), encoding="utf-8")
