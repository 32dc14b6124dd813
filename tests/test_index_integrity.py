"""A damaged index is refused at load with one line naming the file, never served and never a
traceback; an intact one (and one written before the integrity records) still loads, and a
rebuild over a damaged one works.

Every damage is done here to a private copy of the fixture index (`index_copy`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.embedders import HashEmbedder
from assistant.errors import EssaError, IndexCorruptError, IndexMissingError
from assistant.indexing import build_index
from assistant.store import live_generation, load_index, save_index

REBUILD_HINT = "essa-qa index --rebuild"
QUESTION = "How does Rhode Island support English learners?"


def _live(index_dir: Path) -> Path:
    generation = live_generation(index_dir)
    assert generation is not None
    return generation


# ------------------------------------------------------------ ways to damage a file


def _missing(path: Path) -> None:
    path.unlink()


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _flipped_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(max(path.stat().st_size, 64)))


def _reversed_rows(path: Path) -> None:
    """Every row still well formed, just in the wrong order: only the recorded hash can tell."""
    if path.suffix == ".npy":
        array = np.load(path)
        assert len(array) > 1 and not np.array_equal(array, array[::-1])
        np.save(path, array[::-1])
    else:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        assert len(lines) > 1
        path.write_text("".join(reversed(lines)), encoding="utf-8")


def _nan_row(path: Path) -> None:
    array = np.load(path)
    array[1] = np.nan
    np.save(path, array)


def _not_json(path: Path) -> None:
    path.write_text("this is not JSON {", encoding="utf-8")


def _edited_json(path: Path) -> None:
    """Still valid JSON, one recorded plan hash changed: the manifest's own digest must catch it."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    plan = manifest["plans"]["RI.pdf"]
    plan["sha256"] = ("0" if plan["sha256"][0] != "0" else "1") + plan["sha256"][1:]
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def _empty(path: Path) -> None:
    path.write_text("", encoding="utf-8")


def _pointing_at_nothing(path: Path) -> None:
    path.write_text("gen-20990101T000000-abcdef", encoding="utf-8")


def _pointing_outside(path: Path) -> None:
    path.write_text("../..", encoding="utf-8")


def _generation_removed(path: Path) -> None:
    import shutil

    shutil.rmtree(path.parent / path.read_text(encoding="utf-8").strip())


Damage = Callable[[Path], None]
WAYS: dict[str, list[tuple[str, Damage]]] = {
    "chunks.jsonl": [("missing", _missing), ("truncated", _truncated), ("flipped", _flipped_byte),
                     ("random", _random_bytes), ("reversed", _reversed_rows)],
    "vectors.npy": [("missing", _missing), ("truncated", _truncated), ("flipped", _flipped_byte),
                    ("random", _random_bytes), ("reversed", _reversed_rows), ("nan", _nan_row)],
    "sentences.npy": [("missing", _missing), ("truncated", _truncated), ("flipped", _flipped_byte),
                      ("random", _random_bytes), ("reversed", _reversed_rows), ("nan", _nan_row)],
    "manifest.json": [("missing", _missing), ("truncated", _truncated), ("flipped", _flipped_byte),
                      ("random", _random_bytes), ("not-json", _not_json), ("edited", _edited_json)],
    "CURRENT": [("empty", _empty), ("random", _random_bytes), ("names-nothing", _pointing_at_nothing),
                ("names-outside", _pointing_outside), ("generation-removed", _generation_removed)],
}
CASES = [pytest.param(name, damage, id=f"{name}-{how}")
         for name, ways in WAYS.items() for how, damage in ways]


def damage_index(index_dir: Path, name: str, damage: Damage) -> None:
    damage(index_dir / name if name == "CURRENT" else _live(index_dir) / name)


def assert_one_line_naming(exc: EssaError, name: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert name in message and REBUILD_HINT in message, message


# ------------------------------------------------------------ refused at load


@pytest.mark.parametrize("name, damage", CASES)
def test_each_damaged_file_is_refused_in_one_line_naming_it(index_copy, name, damage):
    damage_index(index_copy, name, damage)
    with pytest.raises(IndexCorruptError) as caught:
        load_index(index_copy)
    assert_one_line_naming(caught.value, name)


@pytest.mark.parametrize("name", ["vectors.npy", "sentences.npy"])
def test_nan_written_with_honest_records_is_still_refused(index_copy, name):
    """The hash matches when the writer itself stored the NaN; the finite check must catch it."""
    stored = load_index(index_copy)
    arrays = {"vectors.npy": stored.vectors.copy(), "sentences.npy": stored.sentence_vectors.copy()}
    arrays[name][1, 3] = np.nan
    save_index(index_copy, stored.manifest, list(stored.chunks), arrays["vectors.npy"],
               arrays["sentences.npy"])
    with pytest.raises(IndexCorruptError, match="row 1 is not finite") as caught:
        load_index(index_copy)
    assert_one_line_naming(caught.value, name)


def test_no_current_is_a_missing_index_not_a_corrupt_one(index_copy):
    (index_copy / "CURRENT").unlink()
    with pytest.raises(IndexMissingError, match="no index here"):
        load_index(index_copy)


def test_the_corrupt_index_exit_code_is_its_own():
    def subclasses(cls: type) -> list[type]:
        return [cls] + [s for sub in cls.__subclasses__() for s in subclasses(sub)]

    import assistant.evaluation  # noqa: F401  (it defines an error class of its own)

    others = {cls.__name__: cls.exit_code for cls in subclasses(EssaError)
              if "exit_code" in vars(cls) and cls is not IndexCorruptError}
    assert IndexCorruptError.exit_code == 8 and 8 not in others.values(), others


# ------------------------------------------------------------ the CLI: one line, exit 8


@pytest.mark.parametrize("name, damage", [("vectors.npy", _random_bytes), ("chunks.jsonl", _truncated),
                                          ("CURRENT", _empty)])
def test_cli_ask_on_a_damaged_index_prints_one_line_and_exits_8(index_copy, name, damage):
    from assistant.cli import main

    damage_index(index_copy, name, damage)
    result = CliRunner().invoke(main, ["ask", QUESTION, "--index", str(index_copy)],
                                env={"ESSA_QA_EMBEDDER": "hash"})
    assert result.exit_code == 8, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], result.output
    assert "Traceback" not in result.output and "Aborted" not in result.output


# ------------------------------------------------------------ what still loads


def test_intact_index_loads_and_records_every_file(index_copy):
    stored = load_index(index_copy)
    generation = _live(index_copy)
    records = stored.manifest["files"]
    for name in ("chunks.jsonl", "vectors.npy", "sentences.npy"):
        data = (generation / name).read_bytes()
        assert records[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert records[name]["bytes"] == len(data)
    assert records["chunks.jsonl"]["lines"] == len(stored.chunks)
    assert records["vectors.npy"]["shape"] == list(stored.vectors.shape)
    assert records["sentences.npy"]["dtype"] == "float32"
    assert not (generation / "faiss.index").exists()  # written once, never read: no longer written


def test_saving_a_loaded_manifest_again_gives_fresh_records(index_copy):
    """Retagging passes the loaded manifest, old records and all, back to save_index."""
    stored = load_index(index_copy)
    keep = len(stored.chunks) - 1
    save_index(index_copy, stored.manifest, list(stored.chunks[:keep]), stored.vectors[:keep],
               stored.sentence_vectors[:int(stored.sentence_starts[keep])])
    again = load_index(index_copy)
    assert len(again.chunks) == keep and again.manifest["files"]["vectors.npy"]["shape"][0] == keep


def test_chunk_text_with_unicode_line_breaks_survives_the_round_trip(index_copy):
    """U+2028, U+0085 and a form feed are written raw into chunks.jsonl; they end no JSON line."""
    from dataclasses import replace

    stored = load_index(index_copy)
    text = stored.chunks[0].text
    odd = replace(stored.chunks[0], text=text[:5] + "\u2028\x85\x0c" + text[8:])
    save_index(index_copy, stored.manifest, [odd, *stored.chunks[1:]], stored.vectors, stored.sentence_vectors)
    assert load_index(index_copy).chunks[0].text == odd.text


def _as_written_before_records(index_dir: Path) -> Path:
    """The live generation as an index from before this change: no "files", a FAISS file beside."""
    generation = _live(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True),
                                              encoding="utf-8")
    (generation / "faiss.index").write_bytes(b"an old FAISS file nobody reads")
    return generation


def test_index_written_before_the_records_still_loads(index_copy, fixture_index):
    _as_written_before_records(index_copy)
    stored = load_index(index_copy)
    assert [c.id for c in stored.chunks] == [c.id for c in load_index(fixture_index).chunks]


@pytest.mark.parametrize("name, damage", [
    pytest.param("chunks.jsonl", _truncated, id="chunks-truncated"),
    pytest.param("chunks.jsonl", _missing, id="chunks-missing"),
    pytest.param("vectors.npy", _truncated, id="vectors-truncated"),
    pytest.param("vectors.npy", _random_bytes, id="vectors-random"),
    pytest.param("vectors.npy", _nan_row, id="vectors-nan"),
    pytest.param("sentences.npy", _nan_row, id="sentences-nan"),
    pytest.param("manifest.json", _not_json, id="manifest-not-json"),
])
def test_index_written_before_the_records_is_checked_for_what_it_can_be(index_copy, name, damage):
    """Without recorded hashes, parsing, sizes against the .npy header, counts and NaN still guard."""
    generation = _as_written_before_records(index_copy)
    damage(generation / name)
    with pytest.raises(IndexCorruptError) as caught:
        load_index(index_copy)
    assert_one_line_naming(caught.value, name)


# ------------------------------------------------------------ rebuilding over a damaged index


REBUILD_CASES = [pytest.param("vectors.npy", _random_bytes, id="vectors-random"),
                 pytest.param("chunks.jsonl", _missing, id="chunks-missing"),
                 pytest.param("manifest.json", _not_json, id="manifest-not-json"),
                 pytest.param("CURRENT", _empty, id="current-empty")]


@pytest.mark.parametrize("name, damage", REBUILD_CASES)
def test_rebuild_over_a_damaged_index_works(index_copy, fixture_plans, fixture_index, hash_settings,
                                            name, damage):
    damage_index(index_copy, name, damage)
    report = build_index(fixture_plans, index_copy, HashEmbedder(), hash_settings, rebuild=True)
    assert report.changed and not report.failed
    assert [c.id for c in load_index(index_copy).chunks] == [c.id for c in load_index(fixture_index).chunks]


@pytest.mark.parametrize("name, damage", REBUILD_CASES)
def test_plain_index_run_over_a_damaged_index_warns_once_and_reindexes(index_copy, fixture_plans,
                                                                      fixture_index, hash_settings,
                                                                      name, damage):
    damage_index(index_copy, name, damage)
    report = build_index(fixture_plans, index_copy, HashEmbedder(), hash_settings)
    warned = [line for line in report.warnings if "not reused" in line]
    assert len(warned) == 1 and name in warned[0] and "\n" not in warned[0], report.warnings
    assert set(report.embedded) == {"RI.pdf", "kansas-plan.docx"} and report.changed
    assert [c.id for c in load_index(index_copy).chunks] == [c.id for c in load_index(fixture_index).chunks]
