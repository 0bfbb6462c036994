"""TensLoRA constructions as the official code runs them: at every projection call the full
Tucker tensor is folded (core ×1 U1 ×2 U2 …), the projection's slice ΔW is taken and x·ΔW added.
One training step per construction (ViT-shaped model), against PEFT-style LoRA on the same model.
"""
import torch
import torch.nn as nn

from common import args, emit, setup, time_it
from models import build, lora_factory, train_step


def fold(core, factors):
    """Full tensor of a Tucker decomposition by successive mode products."""
    full = core
    for i, u in enumerate(factors):
        full = torch.movedim(torch.tensordot(u, full, dims=([1], [i])), 0, i)
    return full


class TuckerTensor(nn.Module):
    def __init__(self, sizes, ranks):
        super().__init__()
        self.core = nn.Parameter(torch.randn(*ranks) * 0.02)
        self.factors = nn.ParameterList(nn.Parameter(torch.randn(n, r) / n**0.5) for n, r in zip(sizes, ranks))


class FoldedSlice(nn.Module):
    """The update of projection (p, l): fold the whole tensor, index the slice, apply it."""

    def __init__(self, tensor, index, d_in, d_out, scaling=1.0):
        super().__init__()
        self.tensor = tensor  # shared between the projections it covers
        self.index = index  # trailing indices (qkv and/or depth) of this projection
        self.d_in, self.d_out, self.scaling = d_in, d_out, scaling

    def forward(self, x):
        full = fold(self.tensor.core, list(self.tensor.factors))
        dw = full[(Ellipsis, *self.index)] if self.index else full
        return (x @ dw.reshape(self.d_in, self.d_out)) * self.scaling


def construction_factory(name, ranks, c):
    parts = name.split("_")
    att, qkv, depth = "att" in parts, "qkv" in parts, "depth" in parts
    d, H, L = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
    sizes = [d] + ([d // H, H] if att else [d]) + ([3] if qkv else []) + ([L] if depth else [])
    tensors = {}

    def make(p, l, d_in, d_out):
        key = (None if qkv else p, None if depth else l)
        if key not in tensors:
            tensors[key] = TuckerTensor(sizes, ranks)
        index = ([p] if qkv else []) + ([l] if depth else [])
        return FoldedSlice(tensors[key], index, d_in, d_out)

    return make


a = args()
setup(a)
c = a["config"]
times = {}
fold_gflop = {}
for name, ranks in a["ranks"].items():
    torch.manual_seed(0)
    factory = lora_factory(ranks[0]) if name == "lora" else construction_factory(name, ranks, c)
    model, inputs, labels = build(c, factory, a["batch"])
    step, _ = train_step(model, inputs, labels)
    times[name] = time_it(step, a.get("warmup", 1), a.get("runs", 3))["median"]
    del model, step
emit({"times": times})
