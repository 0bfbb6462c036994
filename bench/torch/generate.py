"""Greedy generation with a KV cache in PyTorch eager: a Llama (HF modeling_llama semantics: RMSNorm,
rotate_half RoPE, grouped-query attention, SwiGLU, tied or untied head) over the weights the caller
wrote (HF names), keys and values kept per layer and extended by torch.cat each step, as HF's
DynamicCache does; the prompt in one step, then one token per step, logits of the last position only."""
import math
import time

import torch
import torch.nn.functional as F
from common import args, emit, load_tensors, setup

a = args()
setup(a)
c = a["config"]
w = load_tensors(a["dir"])
L, H, Hkv, d = c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], c["hidden_size"]
dh = c.get("head_dim") or d // H
n_rep = H // Hkv
eps = c["rms_norm_eps"]
inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
head = w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else w["lm_head.weight"]


def rms(x, weight):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, pos):
    f = pos[:, None].float() * inv[None, :]
    emb = torch.cat([f, f], -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    x1, x2 = x[..., : dh // 2], x[..., dh // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def step(ids, cache):
    B, T = ids.shape
    past = cache[0][0].shape[2] if cache else 0
    pos = torch.arange(past, past + T)
    h = F.embedding(ids, w["model.embed_tokens.weight"])
    mask = None
    if T > 1:
        mask = torch.full((T, past + T), float("-inf")).triu(past + 1)
    new_cache = []
    for l in range(L):
        p = f"model.layers.{l}."
        x = rms(h, w[p + "input_layernorm.weight"])
        q = F.linear(x, w[p + "self_attn.q_proj.weight"]).view(B, T, H, dh).transpose(1, 2)
        k = F.linear(x, w[p + "self_attn.k_proj.weight"]).view(B, T, Hkv, dh).transpose(1, 2)
        v = F.linear(x, w[p + "self_attn.v_proj.weight"]).view(B, T, Hkv, dh).transpose(1, 2)
        q, k = rope(q, pos), rope(k, pos)
        if cache:
            k = torch.cat([cache[l][0], k], 2)
            v = torch.cat([cache[l][1], v], 2)
        new_cache.append((k, v))
        kr = k.repeat_interleave(n_rep, 1)
        vr = v.repeat_interleave(n_rep, 1)
        s = q @ kr.transpose(-1, -2) / math.sqrt(dh)
        if mask is not None:
            s = s + mask
        o = (s.softmax(-1) @ vr).transpose(1, 2).reshape(B, T, H * dh)
        h = h + F.linear(o, w[p + "self_attn.o_proj.weight"])
        x = rms(h, w[p + "post_attention_layernorm.weight"])
        h = h + F.linear(F.silu(F.linear(x, w[p + "mlp.gate_proj.weight"])) * F.linear(x, w[p + "mlp.up_proj.weight"]), w[p + "mlp.down_proj.weight"])
    logits = F.linear(rms(h[:, -1:], w["model.norm.weight"]), head)
    return logits, new_cache


def generate(prompt, new_tokens):
    ids, cache, out = prompt, None, []
    for _ in range(new_tokens):
        logits, cache = step(ids, cache)
        ids = logits[:, -1].argmax(-1, keepdim=True)
        out.append(ids)
    return torch.cat(out, 1)


results = {}
with torch.inference_mode():
    for B in a["batches"]:
        prompt = torch.tensor(a["prompts"][:B], dtype=torch.long)
        generate(prompt, 2)  # warm-up
        times = []
        for _ in range(a.get("runs", 1)):
            t0 = time.perf_counter()
            toks = generate(prompt, a["new_tokens"])
            times.append(time.perf_counter() - t0)
        results[str(B)] = {"seconds": sorted(times)[len(times) // 2], "tokens": toks.tolist()}
emit({"results": results})
