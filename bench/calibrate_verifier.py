"""The verifier's claim-to-sentence cosine bar for one embedder, matched to MiniLM's 0.55.

    python bench/calibrate_verifier.py [--index index] [--embedder mpnet] [--pairs 600]

Cosines are not comparable across models, so a new embedder gets the bar that accepts the same
share of unsupported pairs as MiniLM's 0.55 does. Pairs come from the indexed plans' sentences:
- unsupported: two different sentences (different chunks) that already pass the lexical bar (the
  claim's content words, at least half of them, in the other sentence): only the cosine rejects them;
- supported: a sentence with about a quarter of its words dropped (a shortened claim) vs itself.
Prints both acceptance rates per bar; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from assistant.embedders import get_embedder
from assistant.store import live_generation
from assistant.verify import COSINE_BAR, LEXICAL_BAR, content_words


def plan_sentences(generation: Path) -> list[tuple[str, str]]:
    out = []
    for line in (generation / "chunks.jsonl").open(encoding="utf-8"):
        chunk = json.loads(line)
        if chunk["kind"] in ("template", "toc"):
            continue
        for a, b in chunk["sentences"]:
            sentence = " ".join(chunk["text"][a:b].split())
            if 8 <= len(sentence.split()) <= 45:
                out.append((chunk["id"], sentence))
    return out


def pairs(sentences: list[tuple[str, str]], n: int, rng: random.Random):
    words = [content_words(s) for _, s in sentences]
    unsupported = []
    for i, (chunk, sentence) in enumerate(sentences):
        if len(unsupported) >= n:
            break
        if len(words[i]) < 5:
            continue
        for j in rng.sample(range(len(sentences)), min(400, len(sentences))):
            other_chunk, other = sentences[j]
            if other_chunk != chunk and other != sentence and len(words[i] & words[j]) / len(words[i]) >= LEXICAL_BAR:
                unsupported.append((sentence, other))
                break
    supported = []
    for _, sentence in sentences[:n]:
        tokens = sentence.split()
        supported.append((" ".join(t for t in tokens if rng.random() > 0.25) or sentence, sentence))
    return supported, unsupported


def cosines(embedder, pairs_) -> np.ndarray:
    a = embedder.embed([p[0] for p in pairs_])
    b = embedder.embed([p[1] for p in pairs_])
    return np.sum(a * b, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--embedder", default="mpnet")
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    rng = random.Random(0)
    sentences = plan_sentences(live_generation(args.index))
    rng.shuffle(sentences)
    supported, unsupported = pairs(sentences, args.pairs, rng)
    print(f"pairs: {len(supported)} supported, {len(unsupported)} unsupported that pass the lexical bar")
    reference = get_embedder("minilm")
    bar = COSINE_BAR[reference.name]
    target = float((cosines(reference, unsupported) >= bar).mean())
    print(f"minilm at {bar}: accepts {target:.3f} of unsupported, "
          f"{(cosines(reference, supported) >= bar).mean():.3f} of supported")
    embedder = get_embedder(args.embedder)
    pos, neg = cosines(embedder, supported), cosines(embedder, unsupported)
    for candidate in np.arange(0.40, 0.76, 0.01):
        print(f"{args.embedder} at {candidate:.2f}: accepts {(neg >= candidate).mean():.3f} of unsupported, "
              f"{(pos >= candidate).mean():.3f} of supported")
    matched = min(np.arange(0.40, 0.76, 0.01), key=lambda c: abs((neg >= c).mean() - target))
    print(f"bar matching minilm's false-accept share: {matched:.2f} "
          f"(now {COSINE_BAR.get(embedder.name, 'the default')})")


if __name__ == "__main__":
    main()
