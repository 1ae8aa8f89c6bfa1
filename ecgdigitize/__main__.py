"""``python -m ecgdigitize``: the same as the ``ecgdigitize`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    raise SystemExit(main())
