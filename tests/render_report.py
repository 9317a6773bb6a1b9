"""Render a report as a reader sees it: the PDF's pages with pdftoppm and the HTML with headless Chromium, as PNG.

Used by ``tests/test_render.py`` and by ``nox -s render``, which runs this file::

    python tests/render_report.py --out DIR                # the demo (8 heads) and a 72-head report, rendered
    python tests/render_report.py --report FOLDER --out DIR  # an existing report folder, rendered

For each report it writes ``pdf-NN.png`` (one per PDF page), ``html.png`` (the first screen) and ``html-NN.png``
(the HTML printed to pages by Chromium, so the whole page can be read). Look at them: a table that breaks a word, a
figure whose labels overlap or a caption away from its figure shows there and nowhere else.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM", "PDFTOPPM", "missing_tools", "render_html", "render_pdf_pages", "render_report"]

PDFTOPPM = "pdftoppm"
CHROMIUM = "chromium"
_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars")


def missing_tools() -> list[str]:
    """The renderers this machine lacks (``pdftoppm`` from poppler-utils, ``chromium``)."""
    return [tool for tool in (PDFTOPPM, CHROMIUM) if shutil.which(tool) is None]


def render_pdf_pages(pdf: Path, out: Path, *, prefix: str = "pdf", dpi: int = 60) -> list[Path]:
    """Every page of ``pdf`` as ``out/<prefix>-NN.png`` at ``dpi``; returns the files in page order."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([PDFTOPPM, "-r", str(dpi), "-png", str(pdf), str(out / prefix)], check=True,
                   capture_output=True, timeout=600)
    return sorted(out.glob(f"{prefix}-*.png"))


def _chromium(html: Path, profile: Path, *args: str) -> None:
    subprocess.run([CHROMIUM, *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, html.as_uri()], check=True,
                   capture_output=True, timeout=300)


def render_html(html: Path, out: Path, *, dpi: int = 60) -> list[Path]:
    """``out/html.png``, the first screen (1280 x 1600) of ``html``, then its printed pages as ``html-NN.png``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hsi-render-") as scratch:
        profile, printed = Path(scratch) / "profile", Path(scratch) / "printed.pdf"
        _chromium(html, profile, f"--screenshot={out / 'html.png'}", "--window-size=1280,1600")
        _chromium(html, profile, f"--print-to-pdf={printed}", "--no-pdf-header-footer")
        return [out / "html.png", *render_pdf_pages(printed, out, prefix="html", dpi=dpi)]


def render_report(folder: Path, out: Path, *, dpi: int = 60) -> list[Path]:
    """Render ``folder/report.pdf`` and ``folder/report.html`` (those present) into ``out``."""
    files = []
    if (folder / "report.pdf").exists():
        files += render_pdf_pages(folder / "report.pdf", out, dpi=dpi)
    if (folder / "report.html").exists():
        files += render_html(folder / "report.html", out, dpi=dpi)
    return files


def layered_result(n_layers: int = 9, *, n_resamples: int = 199):
    """An analysis of 8 planted heads per layer named like a real model's (``other_traj/cross_attn_<l>:h<k>``)."""
    from hsi_stats import analyze
    from hsi_stats.synthetic import default_heads, generate

    names = [f"other_traj/cross_attn_{layer}:h{head}" for layer in range(n_layers) for head in range(8)]
    heads = tuple(dataclasses.replace(spec, name=names[8 * layer + i])
                  for layer in range(n_layers) for i, spec in enumerate(default_heads()))
    return analyze(generate(n_episodes=16, n_steps=6, heads=heads, rng=3).dataset, n_resamples=n_resamples, rng=0)


def _examples(out: Path, dpi: int) -> None:
    from hsi_stats import write_report

    subprocess.run([sys.executable, "-m", "hsi_stats.cli", "demo", "--out", str(out / "demo")], check=True)
    print(f"demo report: {len(render_report(out / 'demo', out / 'demo-png', dpi=dpi))} images in {out / 'demo-png'}")
    write_report(layered_result(), out / "heads72")
    print(f"72 heads: {len(render_report(out / 'heads72', out / 'heads72-png', dpi=dpi))} images in "
          f"{out / 'heads72-png'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports and their images")
    parser.add_argument("--report", type=Path, help="render this report folder instead of the examples")
    parser.add_argument("--dpi", type=int, default=60, help="resolution of the page images (default 60)")
    args = parser.parse_args(argv)
    if missing := missing_tools():
        parser.error(f"rendering needs {' and '.join(missing)} on PATH (Debian: poppler-utils, chromium)")
    if args.report is not None:
        print(f"{len(render_report(args.report, args.out, dpi=args.dpi))} images in {args.out}")
    else:
        _examples(args.out, args.dpi)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
