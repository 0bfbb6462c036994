"""torch.mm of [M,K]·[K,N] fp32: one product, and 8 chained products per timed call."""
import torch

from common import args, emit, setup, time_it

a = args()
setup(a)
M, K, N = a.get("m", 2048), a.get("k", 768), a.get("n", 768)
chain = a.get("chain", 8)
x = torch.randn(M, K)
ws = [torch.randn(K, N) * (1 / K**0.5) for _ in range(chain)]


def one():
    torch.mm(x, ws[0])


def many():
    y = x
    for w in ws:
        y = torch.mm(y, w)


with torch.no_grad():
    t1 = time_it(one, a.get("warmup", 3), a.get("runs", 15))
    t8 = time_it(many, a.get("warmup", 3), a.get("runs", 15))
emit({"single_s": t1["median"], "chain_s": t8["median"], "chain": chain})
