"""Reference safetensors files for model/io/safetensors.cpp.

Writes under OUT/safetensors/:
  all_dtypes.safetensors + all_dtypes.json   every dtype we support, a scalar, an empty
      tensor, metadata; the JSON holds each tensor's dtype, shape, raw bytes (hex) and values.
  no_metadata.safetensors + no_metadata.json  same without __metadata__ (byte-compare the writer).
  sharded_llama/   a tiny LlamaForCausalLM saved by transformers with a small max_shard_size
      (model.safetensors.index.json + shards), with expected.json (names, shapes, shard of each).
  verdicts/*.bin + verdicts.json   hand-made headers (holes, overlaps, trailing bytes ...) and
      whether the reference reader accepts each one, so the C++ reader can be held to it.
"""
import json
import struct

import torch
from safetensors.numpy import load as np_load
from safetensors.torch import save_file

from oracle_common import deterministic, parse_out_dir, write_json_atomic

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(tensors):
    out = {}
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        values = t.to(torch.float64).flatten().tolist()
        out[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "hex": raw.hex(), "values": values}
    return out


def reference_tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "model.embed_tokens.weight": torch.randn(3, 4, generator=g),
        "layer.2.f16": torch.tensor([1 / 3, -2.5, 65504.0, 6.1e-5], dtype=torch.float16),
        "layer.10.bf16": torch.tensor([[1 / 3, -2.5], [3.0e38, 1e-30]], dtype=torch.bfloat16),
        "ids.i64": torch.tensor([0, -1, 2**40, -(2**62)], dtype=torch.int64),
        "ids.i32": torch.tensor([7, -123456], dtype=torch.int32),
        "bytes.u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "mask.bool": torch.tensor([True, False, False, True], dtype=torch.bool),
        "scalar": torch.tensor(2.75, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "Z.upper": torch.ones(2, dtype=torch.float32),
    }


def write_reference_files(out):
    tensors = reference_tensors()
    # One metadata key only: the reference writer emits metadata in hash-map order,
    # so more than one key has no fixed byte layout to compare against.
    save_file(tensors, str(out / "all_dtypes.safetensors"), metadata={"format": "pt"})
    write_json_atomic(out / "all_dtypes.json", {"metadata": {"format": "pt"}, "tensors": describe(tensors)})
    small = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.tensor([1, 2], dtype=torch.int64)}
    save_file(small, str(out / "no_metadata.safetensors"))
    write_json_atomic(out / "no_metadata.json", {"metadata": {}, "tensors": describe(small)})


def write_sharded_model(out):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    target = out / "sharded_llama"
    model.save_pretrained(str(target), max_shard_size="4KB")
    index = json.loads((target / "model.safetensors.index.json").read_text())
    state = model.state_dict()
    expected = {
        "num_parameters": model.num_parameters(),
        "tensors": {name: {"shape": list(state[name].shape), "shard": shard}
                    for name, shard in index["weight_map"].items()},
    }
    assert len(set(index["weight_map"].values())) > 1, "expected several shards"
    write_json_atomic(target / "expected.json", expected)


def header_file(header, data_size, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + b"\0" * data_size


def write_verdicts(out):
    def f32(shape, offsets):
        return {"dtype": "F32", "shape": shape, "data_offsets": offsets}

    cases = {
        "valid": header_file({"a": f32([2], [0, 8])}, 8),
        "hole_between": header_file({"a": f32([1], [0, 4]), "b": f32([1], [8, 12])}, 12),
        "hole_before": header_file({"a": f32([1], [4, 8])}, 8),
        "trailing_bytes": header_file({"a": f32([1], [0, 4])}, 8),
        "overlap": header_file({"a": f32([2], [0, 8]), "b": f32([2], [4, 12])}, 12),
        "end_beyond_data": header_file({"a": f32([2], [0, 8])}, 4),
        "size_mismatch": header_file({"a": f32([3], [0, 8])}, 8),
        "negative_dim": header_file({"a": f32([-1], [0, 8])}, 8),
        "begin_after_end": header_file({"a": f32([0], [8, 0])}, 8),
        "unknown_dtype": header_file({"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, 1),
        "lowercase_dtype": header_file({"a": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, 4),
        "bad_json": header_file(None, 0, b"{nope"),
        "not_object": header_file(None, 0, b"[]      "),
        "leading_space": header_file(None, 4, b' {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
        "trailing_spaces": header_file(None, 4, b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   '),
        "trailing_nul": header_file(None, 4, b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\0\0'),
        "empty_header_object": header_file({}, 0),
        "metadata_not_string": header_file({"__metadata__": {"x": 1}}, 0),
        "metadata_null": header_file({"__metadata__": None}, 0),
        "extra_field": header_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, 4),
        "three_offsets": header_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}}, 4),
        "float_offset": header_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}}, 4),
        "float_dim": header_file({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, 4),
        "missing_shape": header_file({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, 4),
        "empties_share_offset": header_file({"a": f32([0], [0, 0]), "b": f32([0], [0, 0]), "c": f32([1], [0, 4])}, 4),
        "unordered_offsets": header_file({"b": f32([1], [4, 8]), "a": f32([1], [0, 4])}, 8),
        "overflowing_shape": header_file({"a": f32([2**62, 2**62], [0, 4])}, 4),
        "too_small": b"\0" * 4,
        "header_too_large": struct.pack("<Q", 200_000_000) + b"{}",
        "header_beyond_file": struct.pack("<Q", 100) + b"{}",
        "zero_header": struct.pack("<Q", 0),
    }
    (out / "verdicts").mkdir(parents=True, exist_ok=True)
    verdicts = {}
    for name, blob in cases.items():
        (out / "verdicts" / f"{name}.bin").write_bytes(blob)
        try:
            np_load(blob)
            verdicts[name] = {"accepted": True}
        except Exception as e:  # the reference's SafetensorError
            verdicts[name] = {"accepted": False, "reference_error": str(e)}
    write_json_atomic(out / "verdicts.json", verdicts)


def main():
    out = parse_out_dir() / "safetensors"
    out.mkdir(parents=True, exist_ok=True)
    deterministic(0)
    write_reference_files(out)
    write_sharded_model(out)
    write_verdicts(out)


if __name__ == "__main__":
    main()
