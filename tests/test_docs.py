"""The README and docs/ as a reader meets them: every Python block runs as
printed (in a fresh process, each file in its own namespace), every link
between them points at a file, and every page is in the site's
navigation."""

import glob
import os
import re

from tests.helpers import ROOT

PAGES = [os.path.join(ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
SCRIPT = os.path.join(ROOT, "tests", "scripts", "run_markdown.py")


def python_blocks(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"^```python\n", f.read(), re.M)


def scripts(folder):
    """Run in the child process the `documentation` fixture (conftest.py)
    starts, in a folder of its own."""
    return [[SCRIPT, *PAGES]]


def test_every_python_block_runs_as_printed(documentation):
    total = sum(len(python_blocks(p)) for p in PAGES)
    assert total >= 8
    assert f"ran {total} Python blocks" in documentation["run_markdown.py"]


def test_the_readme_is_read_in_five_minutes():
    with open(PAGES[0], encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 160


def test_links_point_at_files():
    for page in PAGES:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if "://" in target:
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page),
                                                 target))
            assert os.path.exists(path), (page, target)


def test_every_page_is_in_the_navigation():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        config = f.read()
    for page in PAGES[1:]:
        assert os.path.basename(page) in config, page
