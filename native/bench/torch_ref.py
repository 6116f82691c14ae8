#!/usr/bin/env python3
"""PyTorch reference for the engine's CUDA benchmark (native/bench/cuda.js runs it in the same
job, before the engine, so the two share the machine and its state).

Measures on the current GPU, for the same Qwen2-0.5B-shaped model with random weights:
  - the card's ceilings: a bf16 8192^3 matrix product (TFLOP/s) and a device-to-device copy (TB/s,
    bytes read + written);
  - training: fp32 master weights, bf16 autocast, fused AdamW, logprobs + backward + step on
    batch x seqLen tokens (the engine's training step);
  - generation: HF `generate` in bf16, eager mode (no torch.compile), sampling at temperature 1,
    with 64 and 256 sequences in flight, every sequence producing all its new tokens.
Prints one JSON object on the last line.
"""
import argparse
import json
import time

import torch


def timed(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2]


def ceilings():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    t = timed(lambda: a @ b, reps=10, warmup=3)
    tflops = 2 * n**3 / t / 1e12
    x = torch.randn(512 * 1024 * 1024, device="cuda", dtype=torch.float32)  # 2 GiB
    y = torch.empty_like(x)
    t = timed(lambda: y.copy_(x), reps=10, warmup=2)
    tbps = 2 * x.numel() * 4 / t / 1e12
    del a, b, x, y
    torch.cuda.empty_cache()
    return tflops, tbps


def qwen2(cfg):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c = Qwen2Config(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        max_position_embeddings=cfg["max_position_embeddings"],
        rope_theta=cfg["rope_theta"],
        rms_norm_eps=cfg["rms_norm_eps"],
        tie_word_embeddings=cfg["tie_word_embeddings"],
    )
    torch.manual_seed(1)
    return Qwen2ForCausalLM(c).cuda()


def train(cfg, batch, seq, steps):
    model = qwen2(cfg).float()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, fused=True)
    g = torch.Generator(device="cuda").manual_seed(7)
    ids = torch.randint(0, cfg["vocab_size"], (batch, seq), device="cuda", generator=g)
    w = torch.full((batch, seq - 1), -1.0 / (batch * (seq - 1)), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        (w * logp).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)

    t = timed(step, reps=steps, warmup=1)
    del model, opt
    torch.cuda.empty_cache()
    return t


def generate(cfg, seqs, prompt_len, new_tokens):
    model = qwen2(cfg).to(torch.bfloat16)
    model.eval()
    g = torch.Generator(device="cuda").manual_seed(3)
    ids = torch.randint(0, cfg["vocab_size"], (seqs, prompt_len), device="cuda", generator=g)
    mask = torch.ones_like(ids)

    def run():
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                pad_token_id=0,
            )
        assert out.shape[1] == prompt_len + new_tokens

    t = timed(run, reps=2, warmup=1)
    attn = getattr(model.config, "_attn_implementation", "?")
    del model
    torch.cuda.empty_cache()
    return t, attn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="the model's HF config as JSON")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--seqs", default="64,256")
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("torch_ref.py: no CUDA device is visible to PyTorch")
    cfg = json.loads(a.config)
    tflops, tbps = ceilings()
    step_s = train(cfg, a.batch, a.seq, a.steps)
    gen = {}
    attn = "?"
    for s in [int(x) for x in a.seqs.split(",")]:
        t, attn = generate(cfg, s, a.prompt, a.new)
        gen[str(s)] = {"s": round(t, 3), "tokens_per_s": round(s * a.new / t, 1)}
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(),
                "torch": torch.__version__,
                "bf16_matmul_tflops": round(tflops, 1),
                "copy_tb_per_s": round(tbps, 3),
                "train_step_s": round(step_s, 4),
                "train_tokens_per_s": round(a.batch * a.seq / step_s, 1),
                "generate": gen,
                "generate_attention": attn,
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )


if __name__ == "__main__":
    main()
