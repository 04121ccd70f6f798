"""Small scanned files for the OCR tests: lines drawn in the sample corpus's font (exact text known)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("scans", ROOT / "examples" / "scans.py")
scans = sys.modules.setdefault("scans", importlib.util.module_from_spec(_spec))
if not hasattr(scans, "SCANS"):
    _spec.loader.exec_module(scans)


def drawn(lines: list[str], width: int = 1100, size: int = 28) -> Image.Image:
    """``lines`` drawn black on white, one per row, at ``size`` pixels (about 13 pt at 150 dpi)."""
    image = Image.new("L", (width, 40 + int(size * 1.9) * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    face = scans.font(size)
    for i, line in enumerate(lines):
        draw.text((30, 20 + int(size * 1.9) * i), line, font=face, fill=0)
    return image


def scanned_pdf(path: Path, pages: list[Image.Image | str]) -> Path:
    """A PDF whose pages are images (no text layer) or, for a string, real text in a base-14 font."""
    import matplotlib

    matplotlib.use("pdf")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with matplotlib.rc_context({"pdf.use14corefonts": True, "font.family": "sans-serif",
                                "font.sans-serif": ["Helvetica"]}):
        with PdfPages(path) as pdf:
            for page in pages:
                fig = plt.figure(figsize=(8.27, 11.69), dpi=150)
                if isinstance(page, str):
                    fig.text(0.08, 0.9, page, fontsize=11)
                else:
                    fig.figimage(page, cmap="gray", vmin=0, vmax=255, xo=40, yo=1200)
                pdf.savefig(fig, dpi=150)
                plt.close(fig)
    return path
