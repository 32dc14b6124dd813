"""Which encoder layers' feed-forward output must stay fp32 in the ONNX int8 copy (ModelSpec.int8_fp32_layers).

    python bench/int8_layers.py [--index index] [--embedder mpnet] [--passages 40]

Quantizing every weight matrix dynamically to int8 moves mpnet's vectors far (cosine 0.84 from
fp32 at worst): the feed-forward output projection reads GELU outputs whose few huge values wreck
a per-tensor activation scale. This quantizes everything but those projections, then each layer's
projection on its own on top, and prints per layer how far passage vectors move from fp32 and how
fast each variant runs, on real indexed passages (their embedded text, batch 1 as the index build).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path


from assistant.config import Settings
from assistant.embedders import MODELS, OnnxEmbedder, get_embedder
from assistant.embedders.models import onnx_file
from assistant.store import live_generation


def passages(generation: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in (generation / "chunks.jsonl").open(encoding="utf-8")]
    rows = [r for r in rows if r["kind"] not in ("template", "toc")]
    rows.sort(key=lambda r: -len(r["text"]))  # the long passages: where int8 errors add up
    return [r["text"] for r in rows[: n * 3 : 3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--embedder", default="mpnet")
    parser.add_argument("--passages", type=int, default=40)
    args = parser.parse_args()

    texts = passages(live_generation(args.index), args.passages)
    settings = replace(Settings(), embedder=args.embedder, embedder_runtime="onnx", embedding_cache="off")
    fp32 = get_embedder(args.embedder, settings)
    spec = MODELS[args.embedder]
    source = onnx_file(spec, Path(fp32.model_dir), settings.model_cache or None)
    layers = json.loads((Path(fp32.model_dir) / "config.json").read_text())["num_hidden_layers"]

    def measure(label: str, fp32_layers: tuple[int, ...], scratch: Path) -> None:
        # A model cache of its own per variant, holding links to the one fp32 export.
        cache = scratch / label.replace(" ", "_")
        cache.mkdir()
        for name in (source.name, source.name + ".sha256"):
            (cache / name).symlink_to(source.parent / name)
        variant = OnnxEmbedder(replace(spec, int8_fp32_layers=fp32_layers), fp32.model_dir, "int8",
                               cache_dir=cache)
        variant.embed(texts[:1])  # quantizes into the variant's cache and warms the session up
        started = time.perf_counter()
        vectors = variant.embed(texts)
        rate = len(texts) / (time.perf_counter() - started)
        cosine = (vectors * reference).sum(axis=1)
        print(f"{label:>24}  {rate:5.2f} passages/s  cosine min {cosine.min():.4f}  mean {cosine.mean():.4f}",
              flush=True)

    fp32.embed(texts[:1])
    started = time.perf_counter()
    reference = fp32.embed(texts)
    print(f"{'fp32':>24}  {len(texts) / (time.perf_counter() - started):5.2f} passages/s", flush=True)
    every = tuple(range(layers))
    with tempfile.TemporaryDirectory() as scratch:
        measure("all int8", (), Path(scratch))
        measure("fp32 ffn-out everywhere", every, Path(scratch))
        for layer in every:
            measure(f"+ int8 ffn-out layer {layer}", tuple(x for x in every if x != layer), Path(scratch))
        measure(f"shipped {list(spec.int8_fp32_layers)}", spec.int8_fp32_layers, Path(scratch))


if __name__ == "__main__":
    main()
