"""Check that every path and anchor the docs and the code's comments cite exists (part of `make lint`).

    python tools/check_docs.py

Markdown links (``[text](docs/redshift.md#upgrading)``) are resolved from the file that holds them;
paths written out in any tracked text file (``plugins/sparkify/staging/restatement.py``,
``docs/warehouse.md#staging-retention``, ``tests/end_to_end/test_faults.py::test_hours_in_random_order``)
from the repository's root. Anchors follow GitHub's heading slugs; a ``::name`` must be a function or
class of that Python file. Prints one line per broken reference and exits 1 if there is any.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The folders of the project a cited path starts with.
TOP_FOLDERS = ("docs", "dags", "plugins", "include", "tests", "tools", "bench")
TEXT_SUFFIXES = {".md", ".py", ".sql", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".json"}
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CITED = re.compile(rf"(?<![\w/.$-])((?:{'|'.join(TOP_FOLDERS)})/[\w./-]*)(?:#([\w-]+))?(?:::(\w+))?")
#: After a cited path, the mark of a pattern or a regular expression, not a path (docs/ui-*.png,
#: include/sql/<stage>/…, tools/lint_sql\.py$).
_PATTERN_NEXT = ("*", "<", "{", "\\")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings (a repeated heading gets -1, -2… as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return frozenset(found)


@cache
def python_names(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", path.read_text(), re.MULTILINE))


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listed.splitlines()
            if Path(name).suffix in TEXT_SUFFIXES or Path(name).name == "Makefile"]


def problem(target: Path, anchor: str | None, name: str | None) -> str | None:
    """What is wrong with a reference, or None."""
    if not target.exists():
        return "no such file or folder"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading #{anchor} in {target.relative_to(REPO)}"
    if name and target.suffix == ".py" and name not in python_names(target):
        return f"no function or class {name} in {target.relative_to(REPO)}"
    return None


def check(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    where = path.relative_to(REPO)
    broken = []
    if path.suffix == ".md":
        for link in _LINK.findall(text):
            if re.match(r"[a-z]+:", link):
                continue  # a URL
            file_part, _, anchor = link.partition("#")
            target = (path.parent / file_part).resolve() if file_part else path
            if (error := problem(target, anchor or None, None)) is not None:
                broken.append(f"{where}: link {link}: {error}")
    for match in _CITED.finditer(text):
        cited, anchor, name = match.groups()
        if text[match.end(1):match.end(1) + 1] in _PATTERN_NEXT:
            continue
        line = text.count("\n", 0, match.start()) + 1
        if (error := problem(REPO / cited.rstrip("./"), anchor, name)) is not None:
            broken.append(f"{where}:{line}: {match.group(0)}: {error}")
    return broken


def main() -> int:
    broken = [line for path in tracked_files() for line in check(path)]
    for line in broken:
        print(line)
    print(f"{len(broken)} broken references" if broken else "every cited path and anchor exists")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
