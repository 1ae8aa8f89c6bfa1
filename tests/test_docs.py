"""The documentation: the site builds with ``--strict``, and the public API is documented.

- ``mkdocs build --strict`` into a temporary folder (skipped when MkDocs is not
  installed): broken links, missing figures, missing API modules, bad snippets
  all fail it.
- Every public function and class (the ``__all__`` of every public module of
  :mod:`ecgdigitize` and :mod:`ecgclassify`) has a numpydoc docstring with a
  ``Parameters`` section when it takes arguments (``Attributes`` also counts
  for a class), a ``Returns``/``Yields`` section when it returns something, and
  an ``Examples`` section. Exception classes only need a docstring. The check
  is strict for every public module (:data:`STRICT_ALL`); ``python
  tests/test_docs.py`` lists any offenders with file:line.
- Every public module has a ``::: module`` block in ``docs/api/``, every such
  block names a module that exists, and every generated results table in
  ``docs/results/`` is included by some page.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("ecgdigitize", "ecgclassify")
#: Modules whose owners are done: every public object must pass the docstring check.
STRICT_MODULES = frozenset({
    "ecgdigitize.errors", "ecgdigitize.io", "ecgdigitize.metrics", "ecgdigitize.record",
    "ecgdigitize.synth", "ecgdigitize.synth.degrade", "ecgdigitize.synth.draw",
    "ecgdigitize.synth.layouts", "ecgdigitize.synth.render", "ecgdigitize.synth.signals",
    "ecgdigitize.synth.style",
})
#: The whole code base passes: every module is strict.
STRICT_ALL = True
_SECTION = re.compile(r"^[ \t]*([A-Z][A-Za-z ]+)[ \t]*\n[ \t]*-{3,}[ \t]*$", re.MULTILINE)


def public_modules() -> list[str]:
    """Dotted names of the public modules (no ``_private``, no ``__main__``)."""
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names.append(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg_name}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


def docstring_sections(doc: str) -> set[str]:
    """Names of the numpydoc sections (a title underlined with dashes) of a docstring."""
    return {m.group(1).strip() for m in _SECTION.finditer(inspect.cleandoc(doc))}


def _takes_arguments(obj: object) -> bool:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return any(p.name not in ("self", "cls") for p in sig.parameters.values())


def _returns_something(func: object) -> bool:
    try:
        ann = inspect.signature(func).return_annotation  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return ann not in (inspect.Signature.empty, None, "None")


def check_object(obj: object) -> list[str]:
    """What the docstring of one public function or class lacks (empty list: fine)."""
    doc = inspect.getdoc(obj) if obj.__doc__ else None
    if not doc:
        return ["docstring"]
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return []
    sections = docstring_sections(obj.__doc__ or "")
    missing = []
    if inspect.isclass(obj):
        init_doc = (obj.__init__.__doc__ or "") if "__init__" in vars(obj) else ""
        sections |= docstring_sections(init_doc)
        if _takes_arguments(obj) and not sections & {"Parameters", "Attributes"}:
            missing.append("Parameters/Attributes")
    else:
        if _takes_arguments(obj) and "Parameters" not in sections:
            missing.append("Parameters")
        if _returns_something(obj) and not sections & {"Returns", "Yields"}:
            missing.append("Returns")
    if "Examples" not in sections:
        missing.append("Examples")
    return missing


def _location(obj: object) -> str:
    obj = inspect.unwrap(obj)  # type: ignore[arg-type]  # e.g. a @contextmanager function
    try:
        path = Path(inspect.getsourcefile(obj) or "?")  # type: ignore[arg-type]
        line = inspect.getsourcelines(obj)[1]  # type: ignore[arg-type]
    except (TypeError, OSError):
        return "?"
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return f"{path}:{line}"


def iter_public_objects() -> Iterator[tuple[str, str, object]]:
    """``(module, name, object)`` for every function and class in a public ``__all__``.

    An object re-exported by several modules is reported once, under the module
    that defines it.
    """
    seen: set[int] = set()
    for mod_name in public_modules():
        module = importlib.import_module(mod_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            if getattr(obj, "__module__", "") not in (mod_name, None) and \
                    obj.__module__.startswith(PACKAGES):
                continue  # reported under its defining module
            seen.add(id(obj))
            yield mod_name, name, obj


def docstring_offenders() -> list[tuple[str, str]]:
    """``(module, "file:line name: missing ...")`` for every public object that fails."""
    out = []
    for mod_name, name, obj in iter_public_objects():
        missing = check_object(obj)
        if missing:
            out.append((mod_name, f"{_location(obj)} {mod_name}.{name}: missing "
                                  f"{', '.join(missing)}"))
    return out


# --- unit tests of the checker itself -----------------------------------------------------
def _good(x: int) -> int:
    """Double.

    Parameters
    ----------
    x : int

    Returns
    -------
    int

    Examples
    --------
    >>> _good(2)
    4
    """
    return 2 * x


def _bad(x: int) -> int:
    """Double, undocumented."""
    return 2 * x


def test_checker_accepts_full_docstring_and_names_what_is_missing() -> None:
    assert check_object(_good) == []
    assert check_object(_bad) == ["Parameters", "Returns", "Examples"]
    assert docstring_sections(_good.__doc__ or "") == {"Parameters", "Returns", "Examples"}


def test_public_modules_are_found() -> None:
    mods = public_modules()
    assert "ecgdigitize.record" in mods and "ecgclassify.base" in mods
    assert "ecgdigitize.synth.render" in mods
    assert not [m for m in mods if m.endswith("__main__")]


# --- the code base ----------------------------------------------------------------------------
def test_docstrings_of_finished_modules() -> None:
    strict = [line for mod, line in docstring_offenders()
              if STRICT_ALL or mod in STRICT_MODULES]
    assert not strict, "numpydoc docstrings incomplete:\n" + "\n".join(strict)


def test_docstrings_of_every_public_object() -> None:
    offenders = [line for _, line in docstring_offenders()]
    assert not offenders, ("numpydoc docstrings incomplete (`python tests/test_docs.py` "
                           "lists them):\n" + "\n".join(offenders))


def _api_blocks() -> set[str]:
    text = "\n".join(p.read_text("utf-8") for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^:::\s+([\w.]+)\s*$", text, re.MULTILINE))


def test_api_reference_covers_every_public_module() -> None:
    blocks = _api_blocks()
    pages = {"ecgdigitize", "ecgclassify", "ecgdigitize.synth"}  # packages: their modules are listed
    missing = [m for m in public_modules() if m not in blocks and m not in pages]
    assert not missing, f"add a ':::' block to docs/api/ for: {missing}"
    unknown = []
    for block in sorted(blocks):
        try:
            importlib.import_module(block)
        except ImportError:
            unknown.append(block)
    assert not unknown, f"docs/api/ documents modules that do not exist: {unknown}"


def test_every_results_table_is_included_by_a_page() -> None:
    pages = "\n".join(p.read_text("utf-8") for p in DOCS.rglob("*.md")
                      if p.parent.name != "results")
    for table in sorted((DOCS / "results").glob("*.md")):
        assert f'--8<-- "docs/results/{table.name}"' in pages, f"{table} is not in any page"


def test_missing_results_snippet_becomes_a_note() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import hooks  # docs/hooks.py
    finally:
        sys.path.remove(str(DOCS))
    md = hooks.on_page_markdown('x\n--8<-- "docs/results/never_written_42.md"\ny\n')
    assert "--8<--" not in md and "Not generated yet" in md
    for table in sorted((DOCS / "results").glob("*.md"))[:1]:  # an existing one is inlined
        text = table.read_text("utf-8")
        md = hooks.on_page_markdown(f'--8<-- "docs/results/{table.name}"\n')
        assert "--8<--" not in md
        assert [ln for ln in md.splitlines() if ln.startswith("|")] == \
            [ln for ln in text.splitlines() if ln.startswith("|")]
        if text.startswith("# "):
            assert md.startswith("### ")  # demoted under the page's sections
    assert "Not available" in hooks.on_page_markdown("::: ecgdigitize.no_such_module\n")
    assert hooks.on_page_markdown("::: ecgdigitize.record\n") == "::: ecgdigitize.record\n"


def test_screenshots_are_small() -> None:
    shots = sorted((DOCS / "assets").glob("*.png"))
    if not shots:
        pytest.skip("no screenshots yet (python docs/make_screenshots.py)")
    too_big = [f"{p.name}: {p.stat().st_size // 1024} KB" for p in shots
               if p.stat().st_size >= 500 * 1024]
    assert not too_big


def python_blocks(page: Path) -> list[str]:
    """The ```` ```python ```` code blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```", page.read_text("utf-8"), re.DOTALL | re.MULTILINE)


@pytest.mark.slow
@pytest.mark.parametrize("page", ["getting-started.md", "how-it-works.md"])
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of the page runs, in order, on a rendered ``sheet.jpg``."""
    pytest.importorskip("neurokit2")
    from PIL import Image

    from ecgdigitize.synth import SheetStyle, render_sheet, simulate_record

    sheet = render_sheet(simulate_record(seed=5), "3x4+1", SheetStyle(dpi=150))
    Image.fromarray(sheet.image).save(tmp_path / "sheet.jpg", quality=92)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    ran = 0
    for block in python_blocks(DOCS / page):
        models = re.findall(r'"(ecgclassify/models/[^"]+)"', block)
        if any(not (ROOT / m).exists() for m in models):
            continue  # the shipped model is not in this checkout
        for m in models:
            block = block.replace(f'"{m}"', repr(str(ROOT / m)))
        exec(compile(block, "getting-started.md", "exec"), namespace)
        ran += 1
    assert ran >= 1
    if page == "getting-started.md":
        assert ran >= 4 and (tmp_path / "out" / "sheet.hea").is_file()
        rec = namespace["rec"]
        assert rec.fs == 500 and rec.n_sig == 12  # type: ignore[attr-defined]
    else:
        assert namespace["layout"].name == "3x4+1"  # type: ignore[attr-defined]
        assert namespace["record"].signal.shape == (5000, 12)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    for page in ("index.html", "how-it-works/index.html", "benchmarks/index.html",
                 "api/ecgdigitize/index.html", "api/ecgclassify/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "ecgdigitize" / "index.html").read_text("utf-8")
    assert "DigitizeConfig" in api and "ECGRecord" in api  # mkdocstrings rendered the modules


if __name__ == "__main__":  # the offenders, with file:line, for the code owners
    for _mod, line in docstring_offenders():
        print(line)
