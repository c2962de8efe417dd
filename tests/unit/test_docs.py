"""The documentation holds together: a short README, links that resolve, a true layout table,
every command documented.

The README says what the project is and links into ``docs/``; these tests fail when it grows
back past 250 lines, when a relative link (file or ``#anchor``) in ``README.md`` or
``docs/*.md`` points at nothing, when the layout table in ``docs/architecture.md`` names a
path or module that does not exist, or when a ``twin`` sub-command has no documentation.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: the pages checked: the README and the docs pages (not docs/_incoming/, drafts in flight)
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 250

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_REPO_PATH = re.compile(
    r"`((?:twin|adapters|controllers|simulators|config|data|docs|scenarios|scripts|benchmarks|tests)"
    r"/[\w./*-]*)`")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (indented blocks are 4+ spaces: left out too)."""
    out, fence = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fence = not fence
            continue
        if not fence and not line.startswith("    "):
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (repeated headings get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        s = slug(m.group(1))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def relative_links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link in the page's prose (not in code)."""
    found: list[tuple[int, str]] = []
    fence = False
    for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fence = not fence
            continue
        if fence or line.startswith("    "):
            continue
        for m in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):   # http:, https:, mailto: ...
                continue
            found.append((i, target))
    return found


def broken_links(pages: list[Path], root: Path = ROOT) -> list[str]:
    """Every relative link of ``pages`` whose file or heading anchor does not exist."""
    bad: list[str] = []
    for page in pages:
        for line, target in relative_links(page):
            path_part, _, anchor = target.partition("#")
            dest = page if not path_part else (page.parent / path_part).resolve()
            where = f"{page.relative_to(root)}:{line}: {target}"
            if not dest.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where} (no heading with anchor #{anchor} in {dest.name})")
    return bad


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, (
        f"README.md has {n} lines (at most {README_MAX_LINES}): move the detail into a docs/ page")


def test_docs_have_an_index_that_lists_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    listed = {t.partition("#")[0] for _, t in relative_links(DOCS / "index.md")}
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.name not in listed]
    assert not missing, f"docs/index.md does not link {missing}"
    assert "docs/index.md" in README.read_text(encoding="utf-8") and index


def test_every_relative_link_resolves() -> None:
    assert len(PAGES) > 10
    assert sum(len(relative_links(p)) for p in PAGES) > 50   # the check reads real links
    bad = broken_links(PAGES)
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    """The checker itself: a missing file and a missing anchor are both reported."""
    (tmp_path / "b.md").write_text("# Title here\n\n## A `code` section: yes\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#a-code-section-yes) [ok2](#top) [gone](c.md) "
                    "[bad](b.md#nope) `[in code](x.md)` [web](https://example.org/x)\n\n# Top\n")
    bad = broken_links([page], root=tmp_path)
    assert len(bad) == 2 and "c.md" in bad[0] and "#nope" in bad[1], bad


def test_every_repository_path_named_in_the_docs_exists() -> None:
    """Backquoted repository paths (`twin/engine/kpis.py`, `config/registers/*.yaml`) exist."""
    bad = []
    for page in PAGES:
        for line in _prose(page.read_text(encoding="utf-8")):
            for path in _REPO_PATH.findall(line):
                if not any(ROOT.glob(path.rstrip("/"))) and not (ROOT / path).exists():
                    bad.append(f"{page.relative_to(ROOT)}: {path}")
    assert not bad, "paths that do not exist:\n" + "\n".join(sorted(set(bad)))


def _layout_section() -> str:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_layout_table_names_the_real_modules() -> None:
    """Every `folder/` (`module`, ...) of the layout names modules that exist there, and every
    module of the package folders is named (the table is brought up to date with the tree)."""
    layout = _layout_section()
    groups = re.findall(r"`((?:twin|adapters|controllers|simulators)/[\w/]*/)` \(([^)]*)\)", layout)
    assert len(groups) >= 8, groups
    bad, named = [], set()
    for folder, inner in groups:
        for name in re.findall(r"`(\w+)`", inner):
            base = ROOT / folder / name
            if not (base.with_suffix(".py").exists() or base.is_dir()):
                bad.append(f"{folder}{name}")
            named.add(f"{folder}{name}")
    assert not bad, f"the layout names modules that do not exist: {bad}"
    for folder in ("twin/app/", "twin/engine/", "twin/components/", "twin/monitoring/",
                   "twin/report/", "twin/trials/"):
        real = {f"{folder}{p.stem}" for p in (ROOT / folder).glob("*.py") if p.stem != "__init__"}
        assert real <= named, f"modules missing from the layout table: {sorted(real - named)}"
    top = {f"twin/{p.name}" for p in (ROOT / "twin").glob("*.py")
           if p.stem not in ("__init__", "__main__")}
    missing = sorted(m for m in top if f"`{m}`" not in layout)
    assert not missing, f"twin/ modules missing from the layout table: {missing}"


def _subcommands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subcommands(sub, f"{prefix} {name}")
                out += nested or [f"{prefix} {name}"]
    return out


def test_every_command_is_documented() -> None:
    """Every `twin` sub-command (and `export`'s formats) and `python -m simulators` is in the
    README or a docs page, written as a command (`twin NAME ...`)."""
    from twin.app.cli import CONTRIBUTED, build_parser

    commands = _subcommands(build_parser("export"), "twin")
    names = {c.split()[1] for c in commands}
    assert {"run", "validate", "show", "hil", "ab", "replay", "calibrate"} <= names
    assert {n for n, _, _ in CONTRIBUTED} <= names
    assert "twin export openmetrics" in commands and "twin export citylearn" in commands
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    missing = [c for c in [*commands, "python -m simulators"]
               if not re.search(re.escape(c) + r"(?![\w-])", text)]
    assert not missing, f"commands without documentation: {missing}"
