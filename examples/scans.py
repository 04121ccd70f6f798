"""Scanned documents of Kestrel Robotics, rendered from known text so OCR can be scored exactly.

Why generated: scans are binary and must not be committed, and an OCR benchmark needs ground truth that
is exact, not re-typed. Each page's text is listed below; it is drawn on a white page at 150 dpi in
Noto Sans CJK (the font ships in the ``noto-cjk-sans-otc`` wheel, so this runs offline) and then degraded
the way real scans are: a page fed in sideways (rotated), a low-resolution fax, a noisy photo of a
printout. Every scan has a born-digital twin (a ``.txt`` with the same text, pages separated by form
feeds) so retrieval over the scan can be compared with retrieval over the text it was made from.

Contract: ``build(out_dir)`` writes every file in ``SCANS`` under ``out_dir`` (``scans/...``) and
returns their paths; ``build_twins(out_dir)`` writes the twins under the same relative paths with a
``.txt`` suffix. Output is deterministic (seeded noise, fixed PDF metadata). ``make_corpus.py --scans``
calls both. Table pages hold cells joined by `` | ``: the truth for a table row is its cells in order.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

#: Pixels per inch of the rendered pages (A4: 1240 x 1754).
DPI = 150
A4 = (1240, 1754)
CELL = " | "


@dataclass(frozen=True)
class ScanPage:
    """One page: its lines of text (the ground truth), language and how it is degraded."""

    lines: tuple[str, ...]
    language: str = "en"  # "en" | "zh"
    style: str = "clean"  # "clean" | "table" | "rotated" | "lowres" | "noisy"
    #: A page that keeps a text layer in a mixed PDF (born digital, not scanned).
    digital: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class ScanDoc:
    pages: tuple[ScanPage, ...]

    @property
    def scanned(self) -> tuple[ScanPage, ...]:
        return tuple(p for p in self.pages if not p.digital)


SCANS: dict[str, ScanDoc] = {
    "scans/baltic_freight_service_agreement_signed.pdf": ScanDoc((
        ScanPage((
            "SERVICE AGREEMENT KR-SA-2026-114",
            "between Kestrel Robotics GmbH, Leopoldstrasse 210, 80807 Munich",
            "and Baltic Freight Partners AS, Havnegata 12, 0150 Oslo, Norway.",
            "1. Scope. Baltic Freight Partners carries spare parts for K2 Courier",
            "and K5 Lift robots from the Munich warehouse to customers in Norway,",
            "Sweden and Denmark. Pickup is every Tuesday and Thursday at 14:00.",
            "2. Fees. The flat rate is 1,870 EUR per month for up to 40 parcels;",
            "each further parcel costs 38 EUR. Express delivery within 24 hours",
            "is charged at 95 EUR per parcel.",
            "3. Term. The agreement starts on 1 December 2026 and runs for two",
            "years. Either party may terminate it with three months notice.",
        )),
        ScanPage((
            "4. Liability. Liability for lost parcels is capped at 5,000 EUR per",
            "parcel unless the declared value is higher and insured.",
            "5. Contacts. Operations contact at Kestrel is Jan Richter, extension",
            "1514. Baltic Freight Partners account manager is Ingrid Solberg.",
            "Signed in Munich on 18 November 2026",
            "Marcus Hale, Chief Financial Officer, Kestrel Robotics GmbH",
            "Ingrid Solberg, Account Manager, Baltic Freight Partners AS",
        )),
    )),
    "scans/purchase_order_PO-7731_with_signed_annex.pdf": ScanDoc((
        ScanPage((
            "Purchase order PO-7731",
            "Kestrel Robotics GmbH orders 12 SICK nanoScan3 safety laser scanners",
            "for the K5 Lift pilot fleet from Sensorik Vertrieb Sued GmbH.",
            "Delivery address: Kestrel Robotics, Leopoldstrasse 210, Munich.",
            "The signed annex on the next page sets the delivery schedule.",
        ), digital=True),
        ScanPage((
            "Annex A to purchase order PO-7731: delivery schedule",
            "The first six scanners are delivered on 9 January 2027 and the",
            "remaining six on 6 February 2027. Late delivery costs the supplier",
            "0.5 percent of the order value per week, at most 5 percent.",
            "Approved by Nadia Petrova, SRE Manager, on 2 December 2026.",
        )),
    )),
    "scans/invoice_INV-2026-0318.png": ScanDoc((
        ScanPage((
            "INVOICE INV-2026-0318",
            "Nordhafen Logistik GmbH to Kestrel Robotics GmbH, 27 November 2026",
            CELL.join(("Item", "Quantity", "Unit price", "Amount")),
            CELL.join(("Battery pack KR-BAT-48", "6", "1,150 EUR", "6,900 EUR")),
            CELL.join(("Charging dock KR-CHG-DOCK", "2", "2,400 EUR", "4,800 EUR")),
            CELL.join(("On-site installation day", "3", "980 EUR", "2,940 EUR")),
            CELL.join(("Total due", "", "", "14,640 EUR")),
            "Payment within 30 days to IBAN DE44 7002 0270 0012 3456 78.",
        ), style="table"),
    )),
    "scans/上海实验室设备采购审批单.jpg": ScanDoc((
        ScanPage((
            "上海研发中心设备采购审批单",
            "申请部门：研发部（上海）申请人：孙丽",
            "申请事项：采购三台温控测试箱，用于K5冷库版电池低温测试。",
            "预算金额：人民币十八万六千元，由二零二七年研发预算列支。",
            "供应商：苏州恒温仪器有限公司，交货期为六周。",
            "审批意见：同意采购。审批人：陈杰，日期：二零二六年十一月二十日。",
        ), language="zh"),
    )),
    "scans/上海办公室消防演练通知.png": ScanDoc((
        ScanPage((
            "上海办公室消防演练通知",
            "全体员工请注意：本季度消防演练定于十二月十日下午三点举行。",
            "警报响起后，请沿东侧楼梯撤离至园区北门广场集合。",
            "各部门负责人负责清点人数，并向行政主管刘洋报告。",
            "演练时间约为四十分钟，期间电梯暂停使用。",
        ), language="zh", style="rotated"),
    )),
    "scans/fax_delivery_note_DN-5520.tif": ScanDoc((
        ScanPage((
            "FAX - Delivery note DN-5520",
            "From Lumen Castings Ltd to Kestrel Robotics, Shanghai office",
            "Delivered: 40 aluminium chassis frames for the K2 Courier,",
            "batch number LC-2026-88, on 24 November 2026.",
            "Two frames had scratches and will be replaced free of charge.",
        ), style="lowres"),
        ScanPage((
            "Page 2 of the delivery note DN-5520",
            "Received by Liu Yang, Office Manager Shanghai.",
            "Questions about this delivery: Lumen Castings hotline 021 6088 4410.",
        ), style="lowres"),
    )),
    "scans/whiteboard_retro_photo.jpg": ScanDoc((
        ScanPage((
            "Nest team retrospective, 25 November 2026",
            "What went well: the 4.2 rollout finished two days early.",
            "What to improve: alerts for the Frankfurt cluster were too noisy.",
            "Action: Jan Richter lowers the disk alert threshold to 85 percent.",
            "Next retrospective on 9 December 2026 in room Falcon.",
        ), style="noisy"),
    )),
}


def build(out_dir: Path) -> list[Path]:
    """Write every scan under ``out_dir`` and return the paths, in ``SCANS`` order."""
    written = []
    for relative, doc in SCANS.items():
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _WRITERS[path.suffix.lower()](path, doc)
        written.append(path)
    return written


def build_twins(out_dir: Path) -> list[Path]:
    """The born-digital twins: each scan's text as ``<name>.txt`` (pages separated by form feeds)."""
    written = []
    for relative, doc in SCANS.items():
        path = Path(out_dir) / Path(relative).with_suffix(".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\f\n".join(p.text.replace(CELL, "  ") for p in doc.pages) + "\n", encoding="utf-8")
        written.append(path)
    return written


def twin_of(relative: str) -> str:
    return Path(relative).with_suffix(".txt").as_posix()


# ------------------------------------------------------------------------------------------------ rendering
def font(size: int):
    """Noto Sans CJK SC at ``size`` pixels (Latin and Chinese glyphs in one face)."""
    import noto_cjk_sans_otc
    from PIL import ImageFont

    path = str(noto_cjk_sans_otc.FONT_PATH)
    for index in range(10):
        face = ImageFont.truetype(path, size, index=index)
        if face.getname()[0].endswith(" SC"):
            return face
    raise RuntimeError(f"{path} holds no Simplified Chinese face")


def render(page: ScanPage):
    """The page as a grayscale image, degraded by its style."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("L", A4, 255)
    draw = ImageDraw.Draw(image)
    size = 24 if page.language == "zh" else 23  # 11 pt at 150 dpi
    face, heading = font(size), font(size + 8)
    y = 110
    for number, line in enumerate(page.lines):
        this = heading if number == 0 else face
        if page.style == "table" and CELL in line:
            y = _table_row(draw, line.split(CELL), y, face)
            continue
        draw.text((110, y), line, font=this, fill=20)
        y += int(this.size * 1.9)
    if page.style == "rotated":
        image = image.rotate(90, expand=True, fillcolor=255)
    elif page.style == "lowres":
        image = image.resize((A4[0] * 2 // 3, A4[1] * 2 // 3), Image.BILINEAR)  # 100 dpi
    elif page.style == "noisy":
        rng = np.random.default_rng(7)
        image = image.rotate(1.5, resample=Image.BILINEAR, fillcolor=255).filter(ImageFilter.GaussianBlur(1.0))
        pixels = np.asarray(image, dtype=np.float32)
        light = np.linspace(0.78, 1.0, A4[0], dtype=np.float32)[None, :] * np.linspace(1.0, 0.85, A4[1])[:, None]
        pixels = pixels * light + rng.normal(0, 14, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image


_COLUMNS = (110, 560, 740, 960, 1160)


def _table_row(draw, cells: list[str], y: int, face) -> int:
    """A ruled table row: cells at fixed columns, lines above and below."""
    height = int(face.size * 2.0)
    draw.line((_COLUMNS[0] - 10, y - 10, _COLUMNS[-1], y - 10), fill=60, width=2)
    for x, cell in zip(_COLUMNS, cells):
        draw.text((x, y), cell, font=face, fill=20)
    draw.line((_COLUMNS[0] - 10, y + height - 10, _COLUMNS[-1], y + height - 10), fill=60, width=2)
    return y + height + 6


def _pdf(path: Path, doc: ScanDoc) -> None:
    """Scanned pages as images without a text layer; a ``digital`` page as real text (a mixed PDF)."""
    import matplotlib

    matplotlib.use("pdf")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with matplotlib.rc_context({"pdf.use14corefonts": True, "font.family": "sans-serif",
                                "font.sans-serif": ["Helvetica"]}):
        with PdfPages(path, metadata={"Title": path.stem, "CreationDate": None, "ModDate": None}) as pdf:
            for page in doc.pages:
                fig = plt.figure(figsize=(A4[0] / DPI, A4[1] / DPI), dpi=DPI)
                if page.digital:
                    y = 0.9
                    for line in page.lines:
                        fig.text(0.08, y, line, fontsize=11)
                        y -= 0.03
                else:
                    fig.figimage(render(page), cmap="gray", vmin=0, vmax=255)
                pdf.savefig(fig, dpi=DPI)
                plt.close(fig)


def _image(path: Path, doc: ScanDoc) -> None:
    pages = [render(p) for p in doc.pages]
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        pages[0].save(path, quality=60 if doc.pages[0].style == "noisy" else 85)
    elif suffix in (".tif", ".tiff"):
        pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_deflate")
    else:
        buffer = io.BytesIO()
        pages[0].save(buffer, format=suffix.lstrip(".").upper().replace("JPG", "JPEG"))
        path.write_bytes(buffer.getvalue())


_WRITERS = {".pdf": _pdf, ".png": _image, ".jpg": _image, ".jpeg": _image, ".tif": _image, ".tiff": _image,
            ".bmp": _image, ".webp": _image}
