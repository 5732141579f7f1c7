"""HTML reports: headings, text, tables and PNG figures in one page that needs no server.

Images are written beside `index.html` and referenced by relative path, so the folder can be
opened from disk, zipped or copied as a whole.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from garagelab.core import plots

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.error { color: #a00; font-weight: bold; }
nav ul { columns: 2; }
"""


def format_value(value: Any) -> str:
    """A table cell: floats with 4 significant digits, everything else as str."""
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


class Report:
    """An HTML page being assembled in `directory`; `write()` produces `index.html`."""

    def __init__(self, directory: Path | str, title: str, refresh_seconds: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.refresh_seconds = refresh_seconds  # a live page reloads itself this often
        self._parts: list[str] = []
        self._sections: list[tuple[str, str]] = []

    def section(self, title: str) -> None:
        """A top-level section; sections are listed in the page's contents."""
        anchor = f"s{len(self._sections) + 1}"
        self._sections.append((anchor, title))
        self._parts.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')

    def heading(self, text: str, level: int = 3) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str, css_class: str | None = None) -> None:
        attr = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{attr}>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        """A table from dict rows; `columns` picks and orders them (default: first row's keys)."""
        if not rows:
            self.text("(no rows)")
            return
        columns = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(format_value(row.get(c, '')))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig: Figure, name: str, caption: str = "") -> Path:
        """Save a matplotlib figure as `name`.png beside the page and show it."""
        path = plots.save(fig, self.directory / f"{name}.png")
        self._add_image(path, caption)
        return path

    def image(self, path: Path | str, caption: str = "") -> None:
        """Show an existing image file, copied beside the page if it lives elsewhere."""
        path = Path(path)
        if path.resolve().parent != self.directory.resolve():
            target = self.directory / path.name
            shutil.copyfile(path, target)
            path = target
        self._add_image(path, caption)

    def _add_image(self, path: Path, caption: str) -> None:
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        src = html.escape(path.name)
        self._parts.append(f'<figure><img src="{src}" alt="{html.escape(caption)}">{cap}</figure>')

    def html(self) -> str:
        nav = ""
        if len(self._sections) > 1:
            items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in self._sections)
            nav = f"<nav><ul>{items}</ul></nav>"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            + (f'<meta http-equiv="refresh" content="{self.refresh_seconds}">' if self.refresh_seconds else "")
            + f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{nav}\n" + "\n".join(self._parts) + "\n</body></html>\n"
        )

    def write(self, name: str = "index.html") -> Path:
        """Write the page atomically (a browser reloading a live page never sees half of it)."""
        path = self.directory / name
        partial = path.with_suffix(".partial")
        partial.write_text(self.html(), encoding="utf-8")
        partial.replace(path)
        return path
