"""MkDocs hooks (mkdocs.yml ``hooks:``): the Examples page, and block-matrix notation kept as text.

Block matrices in the prose, ``[W_1, b_1] [x; 1]``, read as Markdown reference links (``[text] [label]``),
which mkdocs-autorefs then reports as missing targets; a bracket whose content has a ``;`` (vertical
concatenation, never a link label) is escaped outside code, so the pages keep their notation.

``docs/examples.md`` holds the marker ``<!-- examples -->``; it is replaced by one section per
``docs/examples/*.py`` (title and text from the script's docstring, the ``# requires:`` line, the command
that runs it) followed by a pymdownx.snippets include of the file itself, so the page shows the code that
``tests/test_examples.py`` runs and a new script appears without editing the page.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

MARKER = "<!-- examples -->"
REQUIRES = re.compile(r"^#\s*requires:\s*(.+)$", re.MULTILINE)


def example_section(script: Path) -> str:
    """Markdown for one example script: its docstring as text, then the file included by snippets."""
    source = script.read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    title, _, body = doc.partition("\n")
    requires = [name.strip() for line in REQUIRES.findall(source) for name in line.split(",") if name.strip()]
    lines = [f"## {script.stem}.py", "", title.strip(), "", body.strip(), ""]
    if requires:
        lines += [f"Needs: {', '.join(f'`{name}`' for name in requires)}.", ""]
    lines += [f"Run: `python docs/examples/{script.name}`", "", "```python", f'--8<-- "examples/{script.name}"',
              "```", ""]
    return "\n".join(lines)


# "[...] [a; b]" or "[...][a; b]": a label with a semicolon; not inside `code`
BLOCK_LABEL = re.compile(r"(\]\s?)\[([^\[\]`]*;[^\[\]`]*)\]")


def escape_block_matrices(markdown: str) -> str:
    """Escape ``[a; b]`` after ``]`` outside fenced blocks and inline code, so it is not a link label."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            parts = line.split("`")
            parts[::2] = [BLOCK_LABEL.sub(r"\1\\[\2\\]", part) for part in parts[::2]]
            line = "`".join(parts)
        out.append(line)
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = escape_block_matrices(markdown)
    if MARKER not in markdown:
        return markdown
    scripts = sorted((Path(config["docs_dir"]) / "examples").glob("*.py"))
    return markdown.replace(MARKER, "\n".join(example_section(script) for script in scripts))
