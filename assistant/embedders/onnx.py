"""The same sentence-transformers folder run by ONNX Runtime: tokenizer, mean pooling and sentence
spans as in transformer.py, only the forward pass differs. fp32: measured about 30% faster than
torch fp32 on two CPU cores (`essa-qa bench`), the same vectors to 1e-5, so the same fingerprint:
an index built with one runtime answers with the other. int8: the quantized copy made by
`models.quantize_onnx` (about twice fp32's speed; its own fingerprint), on CPUs with VNNI only.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from .models import int8_recipe, onnx_file, require_int8_cpu
from .transformer import TransformerEmbedder


class OnnxEmbedder(TransformerEmbedder):
    runtime = "onnx"
    default_batch_size = 1  # no padding at all; measured fastest (mpnet 4.24 chunks/s, 3.73 at 4)

    @property
    def _variant(self) -> str:
        return "" if self.precision == "fp32" else "+" + int8_recipe(self.spec)

    @cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if self.precision == "int8":
            require_int8_cpu()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads or os.cpu_count() or 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # no warnings about unused initializers on stderr
        path = onnx_file(self.spec, Path(self.model_dir), self._cache_dir, self.precision)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._tokenizer, session

    def _token_vectors(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        _, session = self._model
        return session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]
