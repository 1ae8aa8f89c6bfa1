"""MkDocs hooks of this site (declared under ``hooks:`` in ``mkdocs.yml``).

- A snippet of a benchmark result (``--8<-- "docs/results/NAME.md"``, the
  ``pymdownx.snippets`` syntax) is inlined here, before the extension runs,
  with its headings demoted two levels (the generated files start with a
  ``#`` title; on a page they sit under a ``##`` section). A result not
  generated yet becomes a note naming the command that makes it, so a fresh
  checkout still builds with ``--strict``.
- ``<!-- FEATURES_TABLE -->`` is replaced by the feature table generated from
  :data:`ecgclassify.features.FEATURES`, so the docs never drift from the code.
- ``<!-- N_FEATURES -->`` (and ``N_GLOBAL_FEATURES``, ``N_LEAD_FEATURES``,
  ``N_LEAD_COLUMNS``) become the counts of that table;
  ``<!-- OVERLAYS_GALLERY -->`` becomes every overlay in ``docs/img/overlays/``
  (drawn by ``benchmarks/bench_reference_sheets.py``; its file names vary).
- A ``::: package.module`` block whose module file does not exist (yet) is
  replaced by a note instead of failing the build; ``tests/test_docs.py``
  checks separately that every listed module exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_SNIPPET = re.compile(r'^--8<--\s+"(docs/results/[^"]+\.md)"\s*$', re.MULTILINE)
_API = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)
#: Result file -> command that (re)generates it.
RESULT_COMMANDS: dict[str, str] = {
    "header_shortcut.md": "python -m benchmarks.header_shortcut",
    "feature_models.md": "python -m benchmarks.compare_features",
    "feature_extraction.md": "python -m benchmarks.compare_features",
    "cnn_models.md": "python -m benchmarks.compare_cnn",
    "bench_cnn.md": "python -m benchmarks.bench_cnn",
    "bench_cnn_signal.md": "python -m benchmarks.bench_cnn --signal",
    "signal_cnn_study.md": "python -m benchmarks.signal_cnn_study",
    "signal_cnn_variants.md": "python -m benchmarks.signal_cnn_variants",
    "signal_cnn_screen.md": "python -m benchmarks.signal_cnn_screen",
    "hard_sheets.md": "python -m benchmarks.hard_sheets",
    "id_grouped.md": "python -m benchmarks.id_grouped",
    "batch.md": "python -m benchmarks.bench_batch",
    "bench_digitize.md": "python -m benchmarks.bench_digitize",
    "bench_digitize_truth_panels.md": "python -m benchmarks.bench_digitize --truth-panels",
    "bench_front_stages.md": "python -m benchmarks.bench_front_stages",
    "bench_generality.md": "python -m benchmarks.bench_generality",
    "bench_reference_sheets.md": "python -m benchmarks.bench_reference_sheets",
    "bench_synth.md": "python -m benchmarks.bench_synth",
}


def _include_result(match: re.Match[str]) -> str:
    """The results file, headings demoted two levels (it sits under a page's ``##``)."""
    rel = match.group(1)
    path = ROOT / rel
    if not path.is_file():
        cmd = RESULT_COMMANDS.get(path.name, "python -m benchmarks.study")
        return (f'!!! note "Not generated yet"\n    `{rel}` is written by `{cmd}` '
                "(or `python -m benchmarks.study`); it is absent from this build.\n")
    lines, fenced = [], False
    for line in path.read_text("utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and re.match(r"#{1,4} ", line):
            line = "##" + line
        lines.append(line)
    return "\n".join(lines) + "\n"


def _module_exists(dotted: str) -> bool:
    """True for a module or package file, or a name defined in its parent module."""
    parts = dotted.split(".")
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
        return True
    parent = ROOT.joinpath(*parts[:-1])
    for source in (parent.with_suffix(".py"), parent / "__init__.py"):
        if source.is_file() and _defines(source.read_text("utf-8"), parts[-1]):
            return True
    return False


def _defines(source: str, name: str) -> bool:
    pattern = (rf"^(?:def|class)\s+{name}\b|^{name}\s*[:=]"
               rf"|^\s*from\s+\S+\s+import\b[^\n]*\b{name}\b")
    return re.search(pattern, source, re.MULTILINE) is not None


def _missing_module(match: re.Match[str]) -> str:
    if _module_exists(match.group(1)):
        return match.group(0)
    return (f'!!! note "Not available in this build"\n    `{match.group(1)}` '
            "is not part of this checkout yet.\n")


def _features_table() -> str:
    try:
        from ecgclassify.features import features_table_markdown
    except ImportError as exc:  # scikit-learn / the module missing: say so, do not break
        return f"*(feature table unavailable: {exc})*"
    return features_table_markdown()


def _feature_counts() -> dict[str, str]:
    """``<!-- N_FEATURES -->`` and friends: counts from :mod:`ecgclassify.features`."""
    try:
        from ecgclassify.features import GLOBAL_FEATURES, LEAD_FEATURES, feature_names
    except ImportError:
        return {}
    return {"<!-- N_FEATURES -->": str(len(feature_names())),
            "<!-- N_GLOBAL_FEATURES -->": str(len(GLOBAL_FEATURES)),
            "<!-- N_LEAD_FEATURES -->": str(len(LEAD_FEATURES)),
            "<!-- N_LEAD_COLUMNS -->": str(len(feature_names()) - len(GLOBAL_FEATURES))}


def _overlay_gallery() -> str:
    """Every overlay PNG that ``benchmarks.bench_reference_sheets`` wrote to docs/img/overlays."""
    shots = sorted((ROOT / "docs" / "img" / "overlays").glob("*.png"))
    if not shots:
        return ("*(no overlays yet: `python -m benchmarks.bench_reference_sheets` draws "
                "them)*")
    return "\n\n".join(f"![{p.stem.replace('_', ' ')}: recovered traces over the sheet]"
                       f"(img/overlays/{p.name})" for p in shots)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Apply the three substitutions above to every page."""
    markdown = _SNIPPET.sub(_include_result, markdown)
    markdown = _API.sub(_missing_module, markdown)
    if "<!-- FEATURES_TABLE -->" in markdown:
        markdown = markdown.replace("<!-- FEATURES_TABLE -->", _features_table())
    if "<!-- N_" in markdown:
        for key, value in _feature_counts().items():
            markdown = markdown.replace(key, value)
    if "<!-- OVERLAYS_GALLERY -->" in markdown:
        markdown = markdown.replace("<!-- OVERLAYS_GALLERY -->", _overlay_gallery())
    return markdown
