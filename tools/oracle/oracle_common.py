"""Shared helpers for the oracle scripts: deterministic setup and atomic writes.

The oracle runs the reference implementations (transformers, tokenizers, PEFT,
TRL, tinker-cookbook) and writes what they produce, so the C++ tests compare
against them and never against our own numbers.
"""
import argparse
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKENIZER_FIXTURES = REPO / "tests" / "fixtures" / "tokenizers"


def parse_out_dir() -> Path:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args.out


def deterministic(seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.replace(tmp, path)


def unpacked_tokenizer(family: str, out: Path) -> Path:
    """The project's gzipped copy of a real tokenizer, unpacked under `out`.

    Families: qwen3, llama3_1, llama2 (see tests/fixtures/tokenizers/README.md).
    """
    dst = out / "tokenizers" / family
    dst.mkdir(parents=True, exist_ok=True)
    for gz in sorted((TOKENIZER_FIXTURES / family).glob("*.gz")):
        target = dst / gz.name[: -len(".gz")]
        if not target.exists() or target.stat().st_mtime < gz.stat().st_mtime:
            with gzip.open(gz, "rb") as src, open(target.with_suffix(target.suffix + ".tmp"), "wb") as f:
                shutil.copyfileobj(src, f)
            os.replace(target.with_suffix(target.suffix + ".tmp"), target)
    return dst


def randomize_bf16_exact(model, seed: int, scale: float = 1.5) -> None:
    """Seeded random weights a tiny test model can tell apart: norms around 1,
    unit-variance embeddings, other weights ~ scale/sqrt(fan_in); rounded to bf16
    so that the bf16 file a fixture writes holds exactly these values."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (scale / p.shape[-1] ** 0.5))
            p.copy_(p.bfloat16().float())


def save_bf16(model, model_dir: Path) -> None:
    """Writes `model` to `model_dir` (replacing it) in bf16, as the Hub ships
    models, and leaves the model in fp32 for the oracle's own computations."""
    import torch

    if model_dir.exists():
        shutil.rmtree(model_dir)
    model.to(torch.bfloat16).save_pretrained(model_dir)
    model.float()

