"""A causal-LM training step of a Llama-shaped decoder (SmolLM2-135M by default) in PyTorch eager:
frozen random weights, PEFT-style LoRA on the listed linear layers, RMSNorm, RoPE (rotate_half),
grouped-query attention (repeat_kv, matmul + softmax as HF's eager attention), SwiGLU, tied
LM head, shifted cross-entropy over the vocabulary, torch.optim.AdamW on the LoRA factors.
`checkpoint`: each layer recomputed in the backward pass (torch.utils.checkpoint)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from common import args, emit, serve, setup, time_it
from models import LoRA


class Lin(nn.Module):
    def __init__(self, d_in, d_out, name, targets, r):
        super().__init__()
        self.base = nn.Linear(d_in, d_out, bias=False).requires_grad_(False)
        self.lora = LoRA(d_in, d_out, r) if name in targets else None

    def forward(self, x):
        y = self.base(x)
        return y if self.lora is None else y + self.lora(x)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Layer(nn.Module):
    def __init__(self, c, targets, r):
        super().__init__()
        d, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.H, self.Hkv, self.dh = H, Hkv, d // H
        m = c["intermediate_size"]
        L = lambda i, o, n: Lin(i, o, n, targets, r)
        self.q, self.k, self.v, self.o = L(d, H * self.dh, "q_proj"), L(d, Hkv * self.dh, "k_proj"), L(d, Hkv * self.dh, "v_proj"), L(H * self.dh, d, "o_proj")
        self.gate, self.up, self.down = L(d, m, "gate_proj"), L(d, m, "up_proj"), L(m, d, "down_proj")
        self.n1, self.n2 = RMSNorm(d, c["rms_norm_eps"]), RMSNorm(d, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.H, self.dh).transpose(1, 2)
        k = self.k(h).view(B, T, self.Hkv, self.dh).transpose(1, 2)
        v = self.v(h).view(B, T, self.Hkv, self.dh).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        n = self.H // self.Hkv
        k, v = k.repeat_interleave(n, dim=1), v.repeat_interleave(n, dim=1)
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask, dim=-1)
        x = x + self.o(torch.matmul(probs, v).transpose(1, 2).reshape(B, T, -1))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, c, targets, r, recompute=False):
        super().__init__()
        self.recompute = recompute
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"]).requires_grad_(False)
        self.layers = nn.ModuleList(Layer(c, targets, r) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.theta, self.dh = c["rope_theta"], c["hidden_size"] // c["num_attention_heads"]

    def forward(self, ids):
        T = ids.shape[1]
        inv = 1.0 / self.theta ** (torch.arange(0, self.dh, 2).float() / self.dh)
        f = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)
        x = self.embed(ids)
        for layer in self.layers:
            x = checkpoint(layer, x, cos, sin, mask, use_reentrant=False) if self.recompute else layer(x, cos, sin, mask)
        return F.linear(self.norm(x), self.embed.weight)  # tied head


a = args()
setup(a)
c = a["config"]
model = Llama(c, set(a["targets"]), a.get("rank", 16), bool(a.get("checkpoint"))).train()
B, T = a["batch"], a["seq_len"]
ids = torch.randint(0, c["vocab_size"], (B, T))
trainable = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)


def step():
    opt.zero_grad(set_to_none=True)
    logits = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    opt.step()


info = {"trainable_params": sum(p.numel() for p in trainable)}
if a.get("serve"):
    serve(step, info)
else:
    emit({"step": time_it(step, a.get("warmup", 2), a.get("runs", 3)), **info})
