"""OCR: page images in, lines of text in reading order out (English and Chinese, offline).

The engine is RapidOCR (``rapidocr-onnxruntime``, pinned): PP-OCRv4 detection and recognition models
that ship in its wheel and run on onnxruntime, so it installs with pip alone (Tesseract would need apt
packages on every machine; ``bench/ocr.py`` compares the two). Three things are added around it:

- Word gaps. The recogniser often drops the space between English words ("totals4,820EUR"). Each
  recognised character has a position on the line (its CTC column), and the line image shows where
  the ink is: a run of blank pixel columns between two characters wider than ``GAP_RATIO`` of the
  line height is a word gap, and gets its space back. Two Chinese characters never get one.
- Speed. The detector sees the page scaled to at most ``DET_SIDE`` pixels on its longest side (its
  boxes are mapped back, and lines are cut from the full-resolution page for the recogniser), lines
  are recognised one at a time (``REC_BATCH``: a batch is padded to its widest line, which cost more
  than batching saved), and each worker runs one onnxruntime thread, so two workers use two cores
  without contending (``bench/results/ocr.md`` measures each of these).
- Orientation. A page fed in sideways yields tall, narrow text boxes, and one upside down makes the
  orientation classifier flip most lines. The page is detected once: its line images are turned
  upright and its boxes mapped into the upright page by arithmetic, never detected again.
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
#: (0.35 was best on the generated English pages with the detector at ``DET_SIDE``: bench/results/ocr.md).
GAP_RATIO = 0.35
#: A pixel column of a line image with at most this part of its height inked counts as blank (specks).
INK_TOLERANCE = 0.04
#: Boxes at least this many line heights apart on one row are separate cells.
CELL_GAP = 1.5
#: Recognised lines below this confidence are dropped as noise (RapidOCR's own default).
MIN_CONFIDENCE = 0.5
#: Longest page side the recogniser's line images are cut from (RapidOCR's default); larger pages are scaled down.
MAX_SIDE = 2000
#: Longest page side the detector sees: an A4 page at 150 dpi (1240x1754) is detected at 679x960, a
#: third of the pixels, with the same boxes on the generated pages (bench/results/ocr.md). Never scaled up.
DET_SIDE = 960
#: Lines recognised per model call: 1, since a batch is padded to its widest line.
REC_BATCH = 1
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
    its onnxruntime threads (default 1: the parser workers are the parallelism, one per core)."""
    from rapidocr_onnxruntime import RapidOCR

    threads = int(os.environ.get("ZHIKU_OCR_THREADS", "0")) or 1
    # "max": the detector only rounds a page already within DET_SIDE (``_upright`` shrinks it) to its
    # 32-pixel grid and never enlarges it; RapidOCR ignores det_limit_side_len in this mode
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, det_limit_type="max",
                    rec_batch_num=REC_BATCH)


def read_page(image: Any) -> OcrPage:
    """OCR one page (a PIL image, any mode), turned upright first when it lies sideways or upside down."""
    rgb = np.asarray(image.convert("RGB"))
    bgr = np.ascontiguousarray(_scaled(rgb, MAX_SIDE)[:, :, ::-1])
    return OcrPage(_rows(_recognise(*_upright(bgr))))


def _scaled(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` shrunk so its longest side is at most ``side`` pixels (never enlarged)."""
    import cv2

    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def _upright(bgr: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The page's text boxes in upright page coordinates and their upright line images.

    Most boxes standing tall means a page fed in sideways: RapidOCR already cuts a tall box's line
    image turned a quarter anticlockwise, which is upright when the page was turned clockwise; the
    orientation classifier finding most lines upside down says it was turned the other way (or, for
    a page of wide boxes, that the page is upside down), and every line image is then turned half
    over. The classifier's verdict counts for the page as a whole: its turn of single lines turned good
    lines over on upright pages (a 67-character line read as "S").
    """
    engine = reader()
    small = _scaled(bgr, DET_SIDE)
    found, _ = engine.text_det(small)
    if found is None or len(found) == 0:
        return [], []
    scale = np.array([bgr.shape[1] / small.shape[1], bgr.shape[0] / small.shape[0]], dtype=np.float32)
    boxes = [(box * scale).astype(np.float32) for box in engine.sorted_boxes(found)]
    crops = engine.get_crop_img_list(bgr, boxes)
    sideways = sum(h > 1.5 * w for w, h in map(_box_size, boxes)) > len(boxes) / 2
    if sideways:  # RapidOCR turns only boxes at least 1.5 times taller than wide: turn the rest still standing
        crops = [crop if crop.shape[1] >= crop.shape[0] else np.rot90(crop) for crop in crops]
    _, classes, _ = engine.text_cls(list(crops))
    flipped = sum(label == "180" for label, _ in classes) > len(crops) / 2
    if flipped:
        crops = [np.rot90(crop, 2) for crop in crops]
    turns = (1 if sideways else 0) + (2 if flipped else 0)
    return [_turned(box, bgr.shape[:2], turns) for box in boxes], [np.ascontiguousarray(c) for c in crops]


def _turned(box: np.ndarray, shape: tuple[int, int], turns: int) -> np.ndarray:
    """``box`` (x, y points) on a page of ``shape`` (height, width) as it lies on the page turned
    ``turns`` quarters anticlockwise (``np.rot90``'s sense)."""
    height, width = shape
    x, y = box[:, 0], box[:, 1]
    for _ in range(turns % 4):
        x, y, height, width = y, width - 1 - x, width, height
    return np.stack([x, y], axis=1)


def _recognise(boxes: list[np.ndarray], crops: list[np.ndarray]) -> list[OcrLine]:
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
    """Length of the longest run of True in ``flags``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


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
