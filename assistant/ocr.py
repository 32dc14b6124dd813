"""Text for PDF pages that have none: the page rendered by PDFium and read by Debian's tesseract.

Scanned letters, signature pages and whole scanned amendments have images and no text layer; the
text tesseract reads is indexed like any other, marked as OCR text from the parser to the
citation ("OCR text: check against the page image"), and quotes from it are verbatim against what
the index stores (not against the page, which only the reader's eyes can check).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .errors import PlanError

# 300 dpi: tesseract's own recommendation for body text; lower loses small print on letters.
DPI = 300
TIMEOUT_S = 120


def tesseract() -> str | None:
    """The tesseract program, or None where it is not installed (OCR is then skipped, warned)."""
    return shutil.which("tesseract")


def ocr_page(path: Path, page: int, program: str | None = None, digest: str = "") -> str:
    """The text tesseract reads on `page` (1-based) of the PDF at `path`; "" when it reads none.

    Kept in the user's cache by (file hash, page, engine): a plan is parsed again for the eval's
    quote checks, the plans list and each re-index, and reading a page costs seconds."""
    from .pageview import render_png

    program = program or tesseract()
    if program is None:
        return ""
    engine = version()
    cached = _cache_file(digest, page, engine) if digest else None
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    try:
        png = render_png(path, page, zoom=DPI / 96)
    except PlanError:  # a PDF pypdf reads but PDFium will not render: the page keeps its warning
        return ""
    try:
        done = subprocess.run([program, "stdin", "stdout", "-l", "eng", "--psm", "3"], input=png,
                              capture_output=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if done.returncode != 0:
        return ""
    text = done.stdout.decode("utf-8", "replace").replace("\f", "").strip()
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            staging = cached.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text(text, encoding="utf-8")
            os.replace(staging, cached)
        except OSError:
            pass  # a read-only cache costs time, never text
    return text


def _cache_file(digest: str, page: int, engine: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "essa-qa" / "ocr"
    key = hashlib.sha256(f"{engine}\n{DPI}".encode()).hexdigest()[:12]
    return base / f"{digest}-{page}-{key}.txt"


@functools.lru_cache(maxsize=1)
def version() -> str:
    """tesseract's version line, stamped into the index manifest (another version reads another text)."""
    program = tesseract()
    if program is None:
        return ""
    try:
        done = subprocess.run([program, "--version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout or done.stderr).decode("utf-8", "replace")
    return text.splitlines()[0].strip() if text else ""
