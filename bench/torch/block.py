"""One ViT-B encoder block fwd+bwd in PyTorch eager, written as HuggingFace ViT + PEFT LoRA run it.

Tensors come from bench/block.ts (writeTensors); with "check", the loss and the gradients of x and
the LoRA factors are written back for comparison and nothing is timed.
"""
import math

import torch
import torch.nn.functional as F

from common import args, emit, load_tensors, save_tensors, serve, setup, time_it

a = args()
setup(a)
P = load_tensors(a["dir"])
H = a["heads"]
s = a["scaling"]
eps = a["eps"]
x = P["x"].requires_grad_(True)
lora = {}
for p in "qkv":
    lora[p] = (P[f"{p}.A"].requires_grad_(True), P[f"{p}.B"].requires_grad_(True))
Bsz, T, d = x.shape
dh = d // H


def dense(h, name):
    y = F.linear(h, P[name + ".w"], P[name + ".b"])
    if name in lora:
        A, Bm = lora[name]
        y = y + F.linear(F.linear(h, A), Bm) * s
    return y


def heads(t):
    return t.view(Bsz, T, H, dh).permute(0, 2, 1, 3)


def block():
    h0 = F.layer_norm(x, (d,), P["ln1.w"], P["ln1.b"], eps)
    q, k, v = (heads(dense(h0, n)) for n in "qkv")
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
    probs = torch.softmax(scores, dim=-1)
    ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(Bsz, T, d)
    h1 = dense(ctx, "o") + x
    m = F.gelu(dense(F.layer_norm(h1, (d,), P["ln2.w"], P["ln2.b"], eps), "fc1"))
    out = dense(m, "fc2") + h1
    return (out * out).mean()


params = [x] + [t for p in "qkv" for t in lora[p]]


def step():
    for t in params:
        t.grad = None
    loss = block()
    loss.backward()
    return loss


if a.get("check"):
    loss = step()
    grads = {"x": x.grad}
    for p in "qkv":
        grads[f"{p}.A"] = lora[p][0].grad
        grads[f"{p}.B"] = lora[p][1].grad
    save_tensors(a["dir"], grads, "grads")
    emit({"loss": loss.item()})
elif a.get("serve"):
    serve(step)
else:
    emit({"step": time_it(step, a.get("warmup", 3), a.get("runs", 5))})
