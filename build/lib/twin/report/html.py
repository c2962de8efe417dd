"""The report page: one self-contained HTML file (inline CSS, images as data URIs).

Nothing is fetched from the network: no fonts, scripts or stylesheets from elsewhere.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RenderedFigure:
    """A figure ready for the page.

    Attributes
    ----------
    stem : file stem (``01_energy_balance``); also the HTML anchor.
    section : section heading the figure belongs to.
    title : figure title (alt text and caption heading).
    caption : one sentence under the figure.
    png : the PNG bytes.
    """

    stem: str
    section: str
    title: str
    caption: str
    png: bytes


CSS = """
:root { --ink: #1d2733; --muted: #5b6673; --line: #d9dee4; --band: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--ink); background: #ffffff; }
header { background: #1d3557; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #dbe4ee; }
main { max-width: 1180px; margin: 0 auto; padding: 12px 32px 48px; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 36px; }
nav ol { columns: 2; margin: 8px 0; padding-left: 22px; }
nav a { color: #1d3557; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.unit { color: var(--muted); }
td.missing { color: var(--muted); text-align: center; }
tr.section th { background: var(--band); font-size: 14px; padding-top: 8px; }
table.kpi thead th { background: #1d3557; color: #fff; }
table.runinfo th { color: var(--muted); font-weight: normal; padding-right: 24px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 48px; align-items: flex-start; }
figure { margin: 18px 0 28px; }
figure img { display: block; width: 100%; max-width: 1100px; height: auto;
             border: 1px solid var(--line); }
figcaption { color: var(--muted); margin-top: 6px; }
figcaption b { color: var(--ink); }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; }
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for ``png`` bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_page(title: str, subtitle: str, tables: list[tuple[str, str]],
                figures: list[RenderedFigure], notes: list[str] | None = None) -> str:
    """The whole page as a string.

    Parameters
    ----------
    title, subtitle : page header.
    tables : (heading, table HTML) pairs shown before the figures (KPIs, run identity).
    figures : the figures in page order, grouped under their ``section``.
    notes : short remarks listed in the footer (plain text).
    """
    esc = html.escape
    sections: dict[str, list[tuple[int, RenderedFigure]]] = {}
    for i, f in enumerate(figures, start=1):
        sections.setdefault(f.section, []).append((i, f))
    toc = "".join(f'<li><a href="#{esc(f.stem)}">{esc(f.title)}</a></li>'
                  for f in figures)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>",
        "<main>",
        '<div class="grid">',
    ]
    for heading, table in tables:
        parts.append(f"<section><h2>{esc(heading)}</h2>{table}</section>")
    parts.append("</div>")
    parts.append(f'<nav><h2>Figures</h2><ol>{toc}</ol></nav>')
    for section, items in sections.items():
        parts.append(f"<h2>{esc(section)}</h2>")
        for i, f in items:
            parts.append(
                f'<figure id="{esc(f.stem)}"><img src="{data_uri(f.png)}" '
                f'alt="{esc(f.title)}" loading="eager">'
                f"<figcaption><b>Figure {i}. {esc(f.title)}.</b> {esc(f.caption)} "
                f"(file {esc(f.stem)}.png)</figcaption></figure>")
    foot = "".join(f"<li>{esc(n)}</li>" for n in notes or [])
    parts.append(f"<footer>{'<ul>' + foot + '</ul>' if foot else ''}"
                 f"<p>Written by twin report on {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
                 ". The page is self-contained: all images are embedded.</p></footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
