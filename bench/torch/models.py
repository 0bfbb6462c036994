"""Transformer encoders as HuggingFace's eager code computes them, with pluggable adapters on q, k, v.

`make_adapter(p, l, d_in, d_out)` returns a module mapping a projection's input x to its update
(None: no adapter): PEFT-style LoRA here, the official-code TensLoRA fold in constructions.py.
Random weights: shape decides cost. Frozen weights have requires_grad False.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def frozen_linear(d_in, d_out):
    return nn.Linear(d_in, d_out).requires_grad_(False)


def frozen_ln(d, eps):
    return nn.LayerNorm(d, eps=eps).requires_grad_(False)


class LoRA(nn.Module):
    """PEFT: lora_B(lora_A(x)) * scaling."""

    def __init__(self, d_in, d_out, r, scaling=1.0):
        super().__init__()
        self.lora_A = nn.Linear(d_in, r, bias=False)
        self.lora_B = nn.Linear(r, d_out, bias=False)
        nn.init.normal_(self.lora_B.weight, std=0.02)
        self.scaling = scaling

    def forward(self, x):
        return self.lora_B(self.lora_A(x)) * self.scaling


def lora_factory(r, scaling=1.0):
    return lambda p, l, d_in, d_out: LoRA(d_in, d_out, r, scaling)


class AdaptedLinear(nn.Module):
    def __init__(self, d_in, d_out, adapter):
        super().__init__()
        self.base = frozen_linear(d_in, d_out)
        self.adapter = adapter

    def forward(self, x):
        y = self.base(x)
        return y if self.adapter is None else y + self.adapter(x)


class Layer(nn.Module):
    """One encoder block; `pre_norm` selects ViT (pre-LN) or BERT/RoBERTa (post-LN)."""

    def __init__(self, l, d, heads, ff, make_adapter, eps, pre_norm, p_hidden, p_attn):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v = (AdaptedLinear(d, d, make_adapter(p, l, d, d)) for p in range(3))
        self.o = frozen_linear(d, d)
        self.fc1, self.fc2 = frozen_linear(d, ff), frozen_linear(ff, d)
        self.ln1, self.ln2 = frozen_ln(d, eps), frozen_ln(d, eps)
        self.pre_norm = pre_norm
        self.p_hidden, self.p_attn = p_hidden, p_attn

    def drop(self, x, p):
        return F.dropout(x, p, True) if p > 0 else x

    def attn(self, x, mask):
        B, T, d = x.shape
        q, k, v = (t(x).view(B, T, self.h, self.dh).permute(0, 2, 1, 3) for t in (self.q, self.k, self.v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        if mask is not None:
            scores = scores + mask
        probs = self.drop(torch.softmax(scores, dim=-1), self.p_attn)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, d)
        return self.drop(self.o(ctx), self.p_hidden)

    def forward(self, x, mask=None):
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), mask)
            return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p_hidden)
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.drop(self.fc2(F.gelu(self.fc1(x))), self.p_hidden))


class ViT(nn.Module):
    def __init__(self, c, make_adapter, p=0.0):
        super().__init__()
        d, ps = c["hidden_size"], c["patch_size"]
        n = (c["image_size"] // ps) ** 2
        self.patch = nn.Conv2d(c["num_channels"], d, ps, ps).requires_grad_(False)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02, requires_grad=False)
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02, requires_grad=False)
        eps = c["layer_norm_eps"]
        self.layers = nn.ModuleList(
            Layer(l, d, c["num_attention_heads"], c["intermediate_size"], make_adapter, eps, True, p, p) for l in range(c["num_hidden_layers"])
        )
        self.ln = frozen_ln(d, eps)
        self.head = nn.Linear(d, c["num_labels"])
        self.p = p

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        if self.p > 0:
            x = F.dropout(x, self.p, True)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln(x)[:, 0])


class Roberta(nn.Module):
    def __init__(self, c, make_adapter, p=0.0):
        super().__init__()
        d = c["hidden_size"]
        self.word = nn.Embedding(c["vocab_size"], d).requires_grad_(False)
        self.pos = nn.Embedding(c["max_position_embeddings"], d).requires_grad_(False)
        self.tok = nn.Embedding(c["type_vocab_size"], d).requires_grad_(False)
        eps = c["layer_norm_eps"]
        self.ln = frozen_ln(d, eps)
        self.layers = nn.ModuleList(
            Layer(l, d, c["num_attention_heads"], c["intermediate_size"], make_adapter, eps, False, p, p) for l in range(c["num_hidden_layers"])
        )
        self.dense = nn.Linear(d, d)
        self.out = nn.Linear(d, c["num_labels"])
        self.p = p
        self.pad = c["pad_token_id"]

    def forward(self, ids, mask):
        # positions as RoBERTa numbers them: running count of non-pad tokens, offset by the pad id
        nonpad = ids.ne(self.pad).int()
        positions = torch.cumsum(nonpad, dim=1) * nonpad + self.pad
        x = self.ln(self.word(ids) + self.tok(torch.zeros_like(ids)) + self.pos(positions))
        if self.p > 0:
            x = F.dropout(x, self.p, True)
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, ext)
        h = x[:, 0]
        if self.p > 0:
            h = F.dropout(h, self.p, True)
        h = torch.tanh(self.dense(h))
        if self.p > 0:
            h = F.dropout(h, self.p, True)
        return self.out(h)


def build(c, make_adapter, batch, seq_len=None, p=0.0, device="cpu"):
    """The model, its inputs and labels for one batch, on `device`."""
    if c["model_type"] == "vit":
        model = ViT(c, make_adapter, p)
        inputs = (torch.randn(batch, c["num_channels"], c["image_size"], c["image_size"]),)
    else:
        model = Roberta(c, make_adapter, p)
        inputs = (torch.randint(3, c["vocab_size"], (batch, seq_len)), torch.ones(batch, seq_len, dtype=torch.long))
    labels = torch.randint(0, c["num_labels"], (batch,))
    return model.to(device).train(), tuple(t.to(device) for t in inputs), labels.to(device)


def train_step(model, inputs, labels, lr=1e-4, weight_decay=0.01):
    """zero_grad, forward, cross-entropy, backward, AdamW on the trainable parameters."""
    trainable = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(*inputs), labels)
        loss.backward()
        opt.step()
        if loss.is_cuda:
            # CUDA runs asynchronously: a step is done when its kernels are
            torch.cuda.synchronize()

    return step, sum(q.numel() for q in trainable)
