"""OCR: page images in, lines of text in reading order out (English and Chinese, offline).

The engine is RapidOCR (``rapidocr-onnxruntime``, pinned): PP-OCRv4 detection and recognition models
that ship in its wheel and run on onnxruntime, so it installs with pip alone (Tesseract would need apt
packages on every machine; ``bench/ocr.py`` compares the two). Three things are added around it:

- Word gaps. The recogniser often drops the space between English words ("totals4,820EUR"). Each
  recognised character has a position on the line (its CTC column), and the line image shows where
  the ink is: a run of blank pixel columns between two characters wider than ``GAP_RATIO`` of the
  line height is a word gap, and gets its space back. Two Chinese characters never get one.
- Orientation. A page fed in sideways yields tall, narrow text boxes; such a page is turned a
  quarter both ways and the turn whose lines the orientation classifier flips least is kept.
- Rows. Boxes are grouped into rows by vertical overlap and read left to right, so a table keeps
  each row on one line (cells joined by `` | `` where the gap between boxes is wide); a two-column
  page is read row by row across both columns (see README, Scanned documents).

The model is loaded once per process (``reader``), in the parser workers, outside their memory cap.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zhiku.text import CJK_CHARS, CJK_PUNCTUATION

#: A blank run between two characters at least this part of the line's mean character advance is a word gap
#: (0.45 was best on the generated English pages: bench/results/ocr.md).
GAP_RATIO = 0.45
#: A pixel column of a line image with at most this part of its height inked counts as blank (specks).
INK_TOLERANCE = 0.04
#: Boxes at least this many line heights apart on one row are separate cells.
CELL_GAP = 1.5
#: Recognised lines below this confidence are dropped as noise (RapidOCR's own default).
MIN_CONFIDENCE = 0.5
#: Longest image side the detector sees (RapidOCR's default); larger pages are scaled down first.
MAX_SIDE = 2000
#: The recogniser's output column stride in pixels of its 48-pixel-high input (PP-OCRv4 rec).
_REC_HEIGHT, _REC_STRIDE = 48, 8
_CELL = " | "
#: Characters written without spaces between them (Chinese text and its punctuation).
_WIDE = re.compile(f"[{CJK_CHARS}{CJK_PUNCTUATION}]")


@dataclass(frozen=True)
class OcrLine:
    """One row of a page: its text, mean character confidence and box (x0, y0, x1, y1)."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrPage:
    lines: list[OcrLine]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float:
        """Mean confidence weighted by characters (0 for a page with no text)."""
        weights = [len(line.text) for line in self.lines]
        return float(np.average([l.confidence for l in self.lines], weights=weights)) if sum(weights) else 0.0


@functools.lru_cache(maxsize=1)
def reader() -> Any:
    """The RapidOCR engine of this process, loaded once (about a second). ``ZHIKU_OCR_THREADS`` sets
    its onnxruntime threads (default: the cores, at most 4)."""
    from rapidocr_onnxruntime import RapidOCR

    threads = int(os.environ.get("ZHIKU_OCR_THREADS", "0")) or min(4, os.cpu_count() or 1)
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def read_page(image: Any) -> OcrPage:
    """OCR one page (a PIL image, any mode), turned upright first when it lies sideways or upside down."""
    rgb = np.asarray(image.convert("RGB"))
    bgr = np.ascontiguousarray(_fit(rgb)[:, :, ::-1])
    return OcrPage(_rows(_recognise(*_upright(bgr))))


def _fit(rgb: np.ndarray) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)


def _upright(bgr: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The page turned so its text reads left to right, its boxes and their (upright) line images.

    Most boxes standing tall means a page fed in sideways: of the two quarter turns, the one whose
    lines the orientation classifier finds upside down least often is upright. Most lines flipped means upside down.
    """
    boxes, crops, flipped = _detect(bgr)
    if boxes and sum(h > 1.5 * w for w, h in map(_box_size, boxes)) > len(boxes) / 2:
        turned = [(k, np.ascontiguousarray(np.rot90(bgr, k))) for k in (1, 3)]
        readings = [(image, *_detect(image)) for _, image in turned]
        bgr, boxes, crops, flipped = min(readings, key=lambda r: r[3] / max(len(r[1]), 1))
    elif boxes and flipped > len(boxes) / 2:
        bgr = np.ascontiguousarray(np.rot90(bgr, 2))
        boxes, crops, flipped = _detect(bgr)
    return bgr, boxes, crops


def _detect(bgr: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Text boxes in reading order, their line images and how many of them read upside down.

    The classifier's verdict counts for the page as a whole (``_upright``); its turn of single lines
    is not used: on upright pages it turned good lines over (a 67-character line read as "S").
    """
    engine = reader()
    boxes, _ = engine.text_det(bgr)
    if boxes is None or len(boxes) == 0:
        return [], [], 0
    boxes = engine.sorted_boxes(boxes)
    crops = engine.get_crop_img_list(bgr, boxes)
    _, classes, _ = engine.text_cls(list(crops))
    return boxes, crops, sum(label == "180" for label, _ in classes)


def _recognise(bgr: np.ndarray, boxes: list[np.ndarray], crops: list[np.ndarray]) -> list[OcrLine]:
    if not boxes:
        return []
    recognised, _ = reader().text_rec(crops, True)
    lines = []
    for box, crop, (text, confidence, info) in zip(boxes, crops, recognised):
        if confidence < MIN_CONFIDENCE or not text.strip():
            continue
        text = spaced(text, info, crop) if info else text
        xs, ys = box[:, 0], box[:, 1]
        lines.append(OcrLine(text.strip(), float(confidence), (float(xs.min()), float(ys.min()),
                                                                float(xs.max()), float(ys.max()))))
    return lines


def _box_size(box: np.ndarray) -> tuple[float, float]:
    return float(np.linalg.norm(box[0] - box[1])), float(np.linalg.norm(box[0] - box[3]))


def spaced(text: str, info: Sequence[Any], crop: np.ndarray) -> str:
    """``text`` with a space wherever the line image has a word gap between two characters.

    ``info`` is RapidOCR's word information (columns, words, their columns, kinds, confidences):
    the characters without spaces, each with the recogniser column it was read at.
    """
    _, words, columns, _, _ = info
    pairs = [(c, col) for word, word_cols in zip(words, columns) for c, col in zip(word, word_cols)]
    if len(pairs) != sum(map(len, words)):
        return text
    kept = [False]
    for (previous, _), (char, _) in zip(pairs, pairs[1:]):
        kept.append(previous == " ")
    chars = [c for c, _ in pairs if c != " "]
    cols = [col for c, col in pairs if c != " "]
    kept = [k for k, (c, _) in zip(kept, pairs) if c != " "]
    if len(chars) < 2:
        return text
    blank = _blank_columns(crop)
    scale = crop.shape[1] / info[0]  # crop pixels per recogniser column
    pitch = (cols[-1] - cols[0]) * scale / (len(cols) - 1)  # mean character advance on this line
    min_gap = GAP_RATIO * pitch
    out = [chars[0]]
    for i in range(1, len(chars)):
        left, right = int((cols[i - 1] + 0.5) * scale), int((cols[i] + 0.5) * scale)
        gap = kept[i] or (not (_is_cjk(chars[i - 1]) and _is_cjk(chars[i]))
                          and _longest_run(blank[left:right]) >= min_gap)
        out.append((" " if gap else "") + chars[i])
    return "".join(out)


def _blank_columns(crop: np.ndarray) -> np.ndarray:
    """Per pixel column of the line image: True where it holds no ink (Otsu threshold)."""
    import cv2

    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    level, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if ink.mean() > 0.5:  # light text on a dark ground
        gray, level = 255 - gray, 255 - level
    # halfway between Otsu's level and the paper: anti-aliased glyph edges count as ink
    ink = gray < (level + np.median(gray)) / 2
    return ink.sum(axis=0) <= max(1, int(INK_TOLERANCE * crop.shape[0]))


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _is_cjk(char: str) -> bool:
    return _WIDE.fullmatch(char) is not None


def _rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Boxes grouped into rows (vertical overlap), each read left to right, rows top to bottom."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda l: (l.box[1] + l.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows and min(l.box[1] for l in rows[-1]) < middle < max(l.box[3] for l in rows[-1]):
            rows[-1].append(line)
        else:
            rows.append([line])
    merged = []
    for row in rows:
        row.sort(key=lambda l: l.box[0])
        text = row[0].text
        for previous, line in zip(row, row[1:]):
            height = max(previous.box[3] - previous.box[1], 1.0)
            text += (_CELL if line.box[0] - previous.box[2] > CELL_GAP * height else " ") + line.text
        weights = [len(l.text) for l in row]
        merged.append(OcrLine(text, float(np.average([l.confidence for l in row], weights=weights)),
                              (min(l.box[0] for l in row), min(l.box[1] for l in row),
                               max(l.box[2] for l in row), max(l.box[3] for l in row))))
    return merged
