#!/usr/bin/env python3
"""Rewrites CUDA sources for cuda_emu.h: a kernel launch becomes an emu_launch call with the
kernel as a template argument (so the emulator can name it; a template kernel must therefore be
launched with explicit template arguments, kv_write_k<KVT><<<...>>>), dynamic shared memory a
pointer into the launch's buffer, the mma.sync asm the emulator's warp-wide product.
Usage: emulate.py [--harness] OUT_DIR FILE.cu ...  (writes OUT_DIR/<name>.cc for each)
--harness: the files are dev/cuda harnesses (see cut_timing); the engine's sources they include
must be transpiled into OUT_DIR/../src."""
import os
import re
import sys


def balanced(s, i):
    """Index just past the parenthesis group opening at s[i] == '('."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unbalanced parentheses")


def split_top(s):
    """The comma-separated parts of a launch configuration, commas inside () and [] kept."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)<<<")


def rewrite_launches(src):
    out, pos = [], 0
    while True:
        m = LAUNCH.search(src, pos)
        if not m:
            out.append(src[pos:])
            return "".join(out)
        end_cfg = src.index(">>>", m.end())
        cfg = split_top(src[m.end():end_cfg])
        args_open = end_cfg + 3
        assert src[args_open] == "(", src[m.start():args_open + 20]
        args_close = balanced(src, args_open)
        args = src[args_open + 1:args_close - 1].strip()
        fn = {2: "emu_launch2", 3: "emu_launch3", 4: "emu_launch"}[len(cfg)]
        call = f"{fn}<{m.group(1)}>({', '.join(cfg)}{', ' + args if args else ''})"
        out.append(src[pos:m.start()] + call)
        pos = args_close


def cut_timing(src, path):
    """A dev/cuda harness without its timing table: main() from the line printing "timing" up to
    the one printing the verdict. The table's shapes are the real model's, hours in emulation."""
    lines = src.split("\n")
    start = [i for i, l in enumerate(lines) if 'std::printf("timing' in l]
    end = [i for i, l in enumerate(lines) if "std::printf(ok ?" in l]
    if len(start) != 1 or len(end) != 1 or end[0] < start[0]:
        raise SystemExit(f"{path}: cannot find the timing section to cut (one 'printf(\"timing' line, then the verdict)")
    return "\n".join(lines[:start[0]] + ["  // (timing cut for the emulator)"] + lines[end[0]:])


def main():
    args = sys.argv[1:]
    harness = args[:1] == ["--harness"]
    if harness:
        args = args[1:]
    out_dir, files = args[0], args[1:]
    os.makedirs(out_dir, exist_ok=True)
    for f in files:
        src = open(f).read()
        if harness:
            src = cut_timing(src, f)
            # The engine's .cu it includes, as transpiled into OUT_DIR/../src.
            src = re.sub(r'#include "(?:\.\./)+src/cuda/(\w+)\.cu"', r'#include "../src/\1.cc"', src)
        src = re.sub(r"extern __shared__ (\w+) (\w+)\[\];", r"\1* \2 = emu_smem<\1>();", src)
        # The only inline asm in the backend: mma_bf16(c, a, b)'s body in gemm.cu.
        src = re.sub(r'asm volatile\(\s*"mma\.sync[\s\S]*?\);', "emu_mma_bf16(c, a, b);", src)
        src = rewrite_launches(src)
        name = os.path.splitext(os.path.basename(f))[0]
        open(os.path.join(out_dir, name + ".cc"), "w").write(src)


if __name__ == "__main__":
    main()
