"""The official-code way for a decoder-scale TensLoRA tensor: fold the full Tucker tensor at every
projection call, take the projection's ΔW slice, apply x·ΔW. The peak memory of the fold is
estimated first; above the cap nothing is allocated and {"fits": false} is reported. Otherwise one
fold and one application are timed and the step is extrapolated to all P·L projection calls.
"""
import time

import torch

from common import args, emit, setup


def fold(core, factors):
    full = core
    for i, u in enumerate(factors):
        full = torch.movedim(torch.tensordot(u, full, dims=([1], [i])), 0, i)
    return full


def fold_peak_elems(sizes, ranks):
    """Largest live set of the mode-product chain: input, its contiguous copy, output."""
    shape = list(ranks)
    peak = 0
    for i, n in enumerate(sizes):
        before = 1
        for s in shape:
            before *= s
        shape[i] = n
        after = 1
        for s in shape:
            after *= s
        peak = max(peak, 2 * before + after)
    return peak


a = args()
setup(a)
sizes, ranks = a["sizes"], a["ranks"]
T = a["tokens"]
d = sizes[0]
needed = 4 * (fold_peak_elems(sizes, ranks) + 2 * T * d + d * d)
if needed > a["cap_bytes"]:
    emit({"fits": False, "needed_bytes": needed})
else:
    core = torch.randn(*ranks) * 0.02
    factors = [torch.randn(n, r) / n**0.5 for n, r in zip(sizes, ranks)]
    x = torch.randn(T, d)
    with torch.no_grad():
        t0 = time.perf_counter()
        full = fold(core, factors)
        t1 = time.perf_counter()
        idx = (Ellipsis, 0, 0)
        dw = full[idx].reshape(d, -1)
        y = x @ dw
        t2 = time.perf_counter()
    calls = a["layers"] * a["projections"]
    emit({"fits": True, "needed_bytes": needed, "fold_s": t1 - t0, "apply_s": t2 - t1, "total_s": calls * (t2 - t0), "calls": calls})
