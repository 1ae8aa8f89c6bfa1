"""Package-level contracts: light imports, typed package, version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ecgdigitize

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return set(out.split())


def test_importing_ecgdigitize_never_imports_tensorflow_or_keras() -> None:
    mods = _imported_modules("import ecgdigitize")
    assert not {m for m in mods if m.split(".")[0] in {"tensorflow", "keras", "torch"}}


def test_importing_ecgclassify_stays_light() -> None:
    mods = _imported_modules("import ecgclassify; import ecgclassify.base")
    assert not {m for m in mods if m.split(".")[0] in {"tensorflow", "keras"}}


def test_package_is_typed_and_versioned() -> None:
    assert (ROOT / "ecgdigitize" / "py.typed").exists()
    assert (ROOT / "ecgclassify" / "py.typed").exists()
    parts = ecgdigitize.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)
