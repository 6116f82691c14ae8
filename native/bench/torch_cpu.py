#!/usr/bin/env python3
"""PyTorch eager on the CPU: the reference beside the engine in `bench:engine --shape ...`
(native/bench/shape.js runs one phase of this script per process, between the engine's own, so
each phase's peak memory is its own and both see the same machine).

A hand-written Qwen2 decoder (no transformers needed), doing the engine's work in fp32 with
normal(0, 0.02) weights: q/k/v biases, RoPE, grouped-query attention, SwiGLU, RMSNorm, a head
tied to the embedding.
  --phase train: logprobs (log-softmax gathered at the next tokens) + backward + clip + AdamW on
    batch x seq tokens; with --lora R, rank-R LoRA (alpha 2R) on every projection and only the
    adapters train, as the engine's addAdapters does.
  --phase generate: --seqs prompts of --prompt tokens, --new tokens each sampled at temperature 1
    from the whole vocabulary with a preallocated KV cache (prefill, then one decode step per
    token), with the sampled tokens' log-probs, as the engine's generate does.
Prints one JSON object on the last line: times (best of the repetitions, after a warm-up), the
load time (building the model and its random weights) and the process's peak resident memory.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn


def normal(*shape):
    return nn.Parameter(torch.empty(*shape).normal_(0.0, 0.02))


class Linear(nn.Module):
    def __init__(self, n_in, n_out, bias, lora):
        super().__init__()
        self.weight = normal(n_out, n_in)
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.lora = lora
        if lora:
            self.weight.requires_grad_(False)
            if bias:
                self.bias.requires_grad_(False)
            self.lora_a = nn.Parameter(torch.empty(lora, n_in).uniform_(-1 / math.sqrt(n_in), 1 / math.sqrt(n_in)))
            self.lora_b = nn.Parameter(torch.zeros(n_out, lora))
            self.scale = 2.0  # alpha / r with alpha = 2r

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.lora:
            y = y + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale
        return y


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Block(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        c, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.h, self.kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.d = c // self.h
        self.eps = cfg["rms_norm_eps"]
        self.ln1 = nn.Parameter(torch.ones(c))
        self.ln2 = nn.Parameter(torch.ones(c))
        self.q = Linear(c, self.h * self.d, True, lora)
        self.k = Linear(c, self.kv * self.d, True, lora)
        self.v = Linear(c, self.kv * self.d, True, lora)
        self.o = Linear(self.h * self.d, c, False, lora)
        self.gate = Linear(c, f, False, lora)
        self.up = Linear(c, f, False, lora)
        self.down = Linear(f, c, False, lora)
        if lora:
            self.ln1.requires_grad_(False)
            self.ln2.requires_grad_(False)

    def forward(self, x, cos, sin, cache=None, at=0):
        """x [B, T, C] at positions at..at+T-1; cache (k, v) [B, KV, max, D] is written and read when given."""
        b, t, _ = x.shape
        g = self.h // self.kv
        a = rms_norm(x, self.ln1, self.eps)
        q = self.q(a).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k(a).view(b, t, self.kv, self.d).transpose(1, 2)
        v = self.v(a).view(b, t, self.kv, self.d).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if cache is not None:
            cache[0][:, :, at : at + t] = k
            cache[1][:, :, at : at + t] = v
            k, v = cache[0][:, :, : at + t], cache[1][:, :, : at + t]
        # Grouped-query attention without copying the keys per head: the g query heads of a kv
        # head are one [g*t, D] matrix against that head's [ctx, D] keys.
        qg = q.reshape(b, self.kv, g * t, self.d)
        scores = (qg @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.d))
        ctx = k.shape[2]
        if t > 1:
            mask = torch.ones(t, ctx, dtype=torch.bool).tril(ctx - t)
            scores = scores.view(b, self.kv, g, t, ctx).masked_fill(~mask, float("-inf")).view(b, self.kv, g * t, ctx)
        att = (scores.softmax(-1) @ v).view(b, self.h, t, self.d).transpose(1, 2).reshape(b, t, self.h * self.d)
        x = x + self.o(att)
        m = rms_norm(x, self.ln2, self.eps)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Qwen2(nn.Module):
    def __init__(self, cfg, lora=0):
        super().__init__()
        c = cfg["hidden_size"]
        self.embed = normal(cfg["vocab_size"], c)
        self.blocks = nn.ModuleList(Block(cfg, lora) for _ in range(cfg["num_hidden_layers"]))
        self.norm = nn.Parameter(torch.ones(c))
        self.eps = cfg["rms_norm_eps"]
        d = c // cfg["num_attention_heads"]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = torch.outer(torch.arange(cfg["max_position_embeddings"], dtype=torch.float64), inv)
        angles = torch.cat((angles, angles), dim=-1)
        self.cos, self.sin = angles.cos().float(), angles.sin().float()
        if lora:
            self.embed.requires_grad_(False)
            self.norm.requires_grad_(False)

    def forward(self, ids, caches=None, at=0, last=False):
        """Logits [B, T, V] for ids [B, T] at positions at..at+T-1 ([B, 1, V], the last position's, when last)."""
        t = ids.shape[1]
        cos, sin = self.cos[at : at + t], self.sin[at : at + t]
        x = F.embedding(ids, self.embed)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if caches is None else caches[i], at)
        if last:
            x = x[:, -1:]
        return F.linear(rms_norm(x, self.norm, self.eps), self.embed)


def random_ids(vocab, shape, seed):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def train(cfg, a):
    t0 = time.perf_counter()
    torch.manual_seed(1)
    model = Qwen2(cfg, a.lora)
    load_s = time.perf_counter() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    ids = random_ids(cfg["vocab_size"], (a.batch, a.seq), 7)
    w = torch.full((a.batch, a.seq - 1), -1.0 / (a.batch * (a.seq - 1)))

    def step():
        s0 = time.perf_counter()
        logp = torch.log_softmax(model(ids)[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        s1 = time.perf_counter()
        (w * logp).sum().backward()
        s2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        return [s1 - s0, s2 - s1, time.perf_counter() - s2]

    step()
    best = min((step() for _ in range(a.steps)), key=sum)
    return {
        "load_s": round(load_s, 3),
        "train_step_s": round(sum(best), 3),
        "train_phases_s": {"logprobs": round(best[0], 3), "backward": round(best[1], 3), "adamw": round(best[2], 3)},
        "trainable_params": sum(p.numel() for p in params),
    }


@torch.no_grad()
def generate(cfg, a):
    t0 = time.perf_counter()
    torch.manual_seed(1)
    model = Qwen2(cfg)
    load_s = time.perf_counter() - t0
    kv, d = cfg["num_key_value_heads"], cfg["hidden_size"] // cfg["num_attention_heads"]
    prompts = random_ids(cfg["vocab_size"], (a.seqs, a.prompt), 3)

    def run(new):
        caches = [(torch.empty(a.seqs, kv, a.prompt + new, d), torch.empty(a.seqs, kv, a.prompt + new, d)) for _ in model.blocks]
        gen = torch.Generator().manual_seed(3)
        logits = model(prompts, caches, 0, last=True)[:, -1]
        out, logps = [], []
        for i in range(new):
            logp = torch.log_softmax(logits, dim=-1)
            tok = torch.multinomial(logp.exp(), 1, generator=gen)
            out.append(tok)
            logps.append(logp.gather(-1, tok))
            if i + 1 < new:
                logits = model(tok, caches, a.prompt + i, last=True)[:, -1]
        return torch.cat(out, dim=1)

    def best_of(reps, new):
        times = []
        for _ in range(reps):
            s = time.perf_counter()
            assert run(new).shape == (a.seqs, new)
            times.append(time.perf_counter() - s)
        return min(times)

    run(2)
    prefill_s = best_of(2, 1)
    gen_s = best_of(a.reps, a.new)
    return {"load_s": round(load_s, 3), "prefill_s": round(prefill_s, 6), "gen_s": round(gen_s, 6), "tokens": a.seqs * a.new}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--phase", choices=["train", "generate"], required=True)
    p.add_argument("--config", required=True, help="the model's HF config as JSON")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up")
    p.add_argument("--lora", type=int, default=0, help="LoRA rank on every projection (0: full weights)")
    p.add_argument("--seqs", type=int, default=16)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--reps", type=int, default=2, help="timed generate runs after one warm-up")
    a = p.parse_args()
    try:
        # Should memory run out, the kernel ends this process, not a neighbour's.
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    torch.set_num_threads(a.threads)
    cfg = json.loads(a.config)
    result = train(cfg, a) if a.phase == "train" else generate(cfg, a)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
