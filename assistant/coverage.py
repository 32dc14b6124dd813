"""Coverage: which state's plan evidences which approach category, with the best passage to cite.

A passage is strong evidence for a category when it carries the category (score at or above the
calibrated threshold) and is the state's own words (response or table text, not template).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .records import RESPONSE, TABLE, Chunk, Passage, format_locator
from .states import STATE_NAMES, state_name
from .versions import newest_sources

INDEXED, NOT_INDEXED, NOT_FETCHED = "indexed", "fetched, not indexed", "not fetched"


@dataclass(frozen=True)
class CoverageCell:
    state: str
    category: str
    count: int
    best: Passage | None  # its score is the category score


@dataclass(frozen=True)
class CoverageTable:
    states: tuple[str, ...]
    categories: tuple[str, ...]
    labels: tuple[str, ...]  # category labels, in the order of `categories`
    cells: tuple[tuple[CoverageCell, ...], ...]  # one row per state, one cell per category
    others: tuple[tuple[str, str], ...] = ()  # (state, status) of every state not indexed

    def cell(self, state: str, category: str) -> CoverageCell:
        return self.cells[self.states.index(state)][self.categories.index(category)]

    def to_markdown(self) -> str:
        lines = ["| state | " + " | ".join(self.labels) + " |",
                 "|---|" + "---|" * len(self.categories)]
        for state, row in zip(self.states, self.cells):
            lines.append(f"| {state_name(state)} ({state}) | "
                         + " | ".join(_cell_markdown(c) for c in row) + " |")
        for state, status in self.others:
            lines.append(f"| {state_name(state)} ({state}) | {status} |" + " |" * (len(self.categories) - 1))
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["state", "category", "label", "strong_passages", "best_source", "best_page",
                         "best_page_label", "best_section", "best_paragraph", "best_chunk_id",
                         "best_score", "status"])
        for state, row in zip(self.states, self.cells):
            for cell, label in zip(row, self.labels):
                b = cell.best
                writer.writerow([state, cell.category, label, cell.count,
                                 *((b.source, b.page or "", b.page_label or "", b.section,
                                    b.paragraph or "", b.chunk_id, b.score) if b else [""] * 7), INDEXED])
        for state, status in self.others:
            writer.writerow([state, "", "", "", *[""] * 7, status])
        return out.getvalue()

    def to_png(self, path: str | Path) -> Path:
        """A heatmap: states down, categories across, the count in each cell."""
        import matplotlib

        matplotlib.use("Agg")  # no display on servers; must precede pyplot
        import matplotlib.pyplot as plt
        import numpy as np

        counts = np.array([[c.count for c in row] for row in self.cells], dtype=float)
        fig, ax = plt.subplots(figsize=(2 + 1.5 * len(self.categories), 1.6 + 0.7 * len(self.states)),
                               dpi=120)
        image = ax.imshow(counts, cmap="YlGnBu", aspect="auto", vmin=0,
                          vmax=max(1.0, float(counts.max()) if counts.size else 1.0))
        ax.set_xticks(range(len(self.categories)), labels=[_wrap(label) for label in self.labels],
                      fontsize=9)
        ax.set_yticks(range(len(self.states)),
                      labels=[f"{state_name(s)} ({s})" for s in self.states], fontsize=10)
        ax.tick_params(top=True, bottom=False, labeltop=True, labelbottom=False)
        threshold = counts.max() / 2 if counts.size else 0
        for i in range(len(self.states)):
            for j in range(len(self.categories)):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=11,
                        color="white" if counts[i, j] > threshold else "black")
        fig.colorbar(image, ax=ax, label="strong passages", fraction=0.03, pad=0.02)
        ax.set_title("ESSA plans: passages evidencing each approach", pad=12, fontsize=12, y=-0.18)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
        plt.close(fig)
        return path


def plan_statuses(indexed: tuple[str, ...] | list[str], plans_dir: str | Path | None) -> dict[str, str]:
    """Every state's plan: indexed, fetched but not indexed (its file is in the plans folder),
    or not fetched; read from the manifest and the folder, nothing parsed."""
    from .plans import load_manifest

    present = set()
    if plans_dir is not None and Path(plans_dir).is_dir():
        files = {p.name for p in Path(plans_dir).iterdir()}
        present = {p.state for p in load_manifest(Path(plans_dir)) if p.filename in files}
    return {code: INDEXED if code in indexed else NOT_INDEXED if code in present else NOT_FETCHED
            for code in STATE_NAMES}


def coverage_table(assistant, plans_dir: str | Path | None = None, every_state: bool = False) -> CoverageTable:
    """States x categories over the assistant's index; with `every_state`, each state not
    indexed is listed after them with its status."""
    tagger = assistant.tagger
    states = tuple(assistant.states)
    rows = []
    for state in states:
        row = []
        for category in tagger.ids:
            strong = _strong_chunks(assistant, state, category)
            best = strong[0] if strong else None
            row.append(CoverageCell(state=state, category=category, count=len(strong),
                                    best=_passage(best, category, tagger) if best else None))
        rows.append(tuple(row))
    others = tuple((s, status) for s, status in plan_statuses(states, plans_dir).items()
                   if status != INDEXED) if every_state else ()
    return CoverageTable(states=states, categories=tagger.ids,
                         labels=tuple(tagger.label(c) for c in tagger.ids), cells=tuple(rows), others=others)


def coverage_cell_passages(assistant, state: str, category: str, limit: int = 10) -> list[Passage]:
    """The strong passages behind one cell, best first (score = the category score)."""
    return [_passage(chunk, category, assistant.tagger)
            for chunk in _strong_chunks(assistant, state.upper(), category)[:limit]]


def _strong_chunks(assistant, state: str, category: str) -> list[Chunk]:
    """Of the state's newest plan version (the one answers quote)."""
    tagger = assistant.tagger
    newest = newest_sources(assistant.retriever.plans)
    chunks = [c for c in assistant.index.chunks
              if c.state == state and c.source in newest and c.kind in (RESPONSE, TABLE)
              and category in tagger.carried(c.categories)]
    return sorted(chunks, key=lambda c: (-c.categories.get(category, 0.0), c.unit, c.char_start))


def _passage(chunk: Chunk, category: str, tagger) -> Passage:
    return Passage.from_chunk(chunk, round(chunk.categories.get(category, 0.0), 4), tagger.carried(chunk.categories))


def _cell_markdown(cell: CoverageCell) -> str:
    if not cell.best:
        return "0"
    b = cell.best
    # The DOCX section path is long; the paragraph number alone locates the passage in a table.
    where = format_locator(b.page, b.page_label, b.paragraph)
    return f"{cell.count} · best: {b.source} {where} ({b.score:.2f})"


def _wrap(label: str, width: int = 16) -> str:
    lines, current = [], ""
    for word in label.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return "\n".join(lines + [current])
