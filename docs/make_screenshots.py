"""Screenshots of the rendered documentation (home, how digitization works, benchmarks).

Builds the site with ``mkdocs build --strict`` into a temporary folder, serves
it on 127.0.0.1 with :mod:`http.server`, and takes a PNG of each page with
headless Chromium into ``docs/assets/`` (palette-reduced to stay < 500 KB).

Run from the repository root: ``python docs/make_screenshots.py [--chromium PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "docs" / "assets"
#: page path in the site -> screenshot file name
PAGES = {"": "home.png", "how-it-works/": "how-it-works.png", "benchmarks/": "benchmarks.png"}
MAX_BYTES = 500 * 1024


def build_site(dest: Path) -> None:
    """``mkdocs build --strict`` into ``dest``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                    "--site-dir", str(dest)], cwd=ROOT, check=True, env=env)


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free 127.0.0.1 port; yield the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def screenshot(chromium: str, url: str, dest: Path, size: tuple[int, int] = (1280, 900)) -> None:
    """Take a PNG of ``url`` with headless Chromium (no network, throw-away profile)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                        f"--screenshot={dest}", url],
                       check=True, capture_output=True, timeout=120)


def shrink(path: Path, max_bytes: int = MAX_BYTES) -> int:
    """Palette-reduce a PNG (fewer colours until it fits); return its size in bytes."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    for colours in (256, 128, 64, 32):
        rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size < max_bytes:
            break
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--out", type=Path, default=ASSETS)
    args = p.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"chromium not found at {args.chromium}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_site(site)
        with serve(site) as base:
            for page, name in PAGES.items():
                dest = args.out / name
                screenshot(args.chromium, base + page, dest)
                print(f"{dest}: {shrink(dest) // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
