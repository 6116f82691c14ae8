// Unit tests of the backends' host-side logic, built with the system C++ compiler and run by
// cuda_host.test.ts on any machine (no GPU, no CUDA toolkit needed): the CUDA backend's GEMM
// tiling and split-K, bf16 rounding, attention limits, KV-cache slots and blocks, the
// scratch-block cache both backends allocate from, and the model's continuous-batching scheduler
// driven through whole generations with random stop tokens over a simulated paged cache.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "backend/block_cache.h"
#include "cuda/plan.h"
#include "model/scheduler.h"

using namespace temper;
using namespace temper::cuda;

static int failures = 0;
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
      failures++;                                                            \
    }                                                                        \
  } while (0)

static void test_gemm_plan() {
  // Training-sized products keep the big tiles and never split K (deterministic sums).
  GemmPlan p = plan_gemm(8192, 896, 896, 132, true, false);
  CHECK(p.tile == GemmTile::Big128 && p.splits == 1 && p.grid_m == 64 && p.grid_n == 7);
  // A decode step (64 rows) against a 896-wide weight: small tiles, K split to fill the chip.
  p = plan_gemm(64, 896, 4864, 132, true, true);
  CHECK(p.tile == GemmTile::Small64);
  CHECK(p.splits > 1 && p.grid_m * p.grid_n * p.splits >= 132);
  CHECK(p.k_tiles_per_split * kGemmBK * p.splits >= 4864);                   // K covered
  CHECK((p.splits - 1) * p.k_tiles_per_split * kGemmBK < 4864);              // no empty split
  CHECK(p.k_tiles_per_split >= 4);
  // Without permission to split, a skinny product stays one pass.
  p = plan_gemm(64, 896, 4864, 132, true, false);
  CHECK(p.splits == 1 && p.k_tiles_per_split * kGemmBK >= 4864);
  // Layouts with no small-tile kernel keep the big one.
  p = plan_gemm(64, 896, 896, 132, false, false);
  CHECK(p.tile == GemmTile::Big128 && p.grid_m == 1);
  // Short K never splits below four tiles per split; sizes not multiple of anything still cover.
  for (int64_t K : {1, 31, 32, 33, 127, 128, 129, 1000, 4097})
    for (int64_t M : {1, 7, 64, 200})
      for (int64_t N : {1, 9, 130, 896}) {
        GemmPlan q = plan_gemm(M, N, K, 132, true, true);
        const int64_t tiles = (K + kGemmBK - 1) / kGemmBK;
        CHECK(q.splits >= 1 && q.splits <= 16);
        CHECK(q.k_tiles_per_split * q.splits >= tiles);
        CHECK((q.splits - 1) * q.k_tiles_per_split < tiles);
        CHECK(q.splits == 1 || q.k_tiles_per_split >= 4);
        CHECK(q.grid_m * q.bm >= M && q.grid_n * q.bn >= N);
      }
}

// The scratch cache both backends allocate from: best fit within twice the request, the oldest
// blocks freed past the limit, everything freed by trim.
static void test_block_cache() {
  static int fresh = 0, dropped = 0;
  {
    BlockCache c([](size_t b) { fresh++; return std::malloc(b); }, [](void* p) { dropped++; std::free(p); }, 10000);
    size_t h1 = 0, h2 = 0, h3 = 0;
    void* a = c.take(1000, &h1);
    CHECK(h1 >= 1000 && h1 % 256 == 0 && fresh == 1);
    c.give(a, h1);
    CHECK(c.cached() == h1);
    void* b = c.take(900, &h2);  // fits without wasting half: the same block
    CHECK(b == a && h2 == h1 && fresh == 1 && c.cached() == 0);
    c.give(b, h2);
    void* big = c.take(8000, &h3);  // the cached block is too small: a fresh one
    CHECK(big != a && fresh == 2);
    c.give(big, h3);  // 1024 + 8192 cached, under the limit
    CHECK(dropped == 0 && c.cached() == h1 + h3);
    size_t h4 = 0;
    void* d = c.take(6000, &h4);  // 8192 is within twice 6000 + 4096: reused
    CHECK(d == big && fresh == 2);
    c.give(d, h4);
    void* e = c.take(2000, &h4);  // 1024 is too small, 8192 wastes more than half: fresh
    CHECK(e != a && e != big && fresh == 3);
    c.give(e, h4);  // 1024 + 8192 + 2048 is past the limit: the oldest blocks go until it is not
    CHECK(dropped == 2 && c.cached() == h4);
    CHECK(c.trim() == h4 && c.cached() == 0 && dropped == 3);
  }
  CHECK(dropped == 3);  // nothing left for the destructor
}

static float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static void test_bf16() {
  CHECK(bf16_bits(1.0f) == 0x3F80);
  CHECK(bf16_bits(-2.0f) == 0xC000);
  CHECK(bf16_bits(0.0f) == 0x0000);
  CHECK(bf16_bits(-0.0f) == 0x8000);
  // Ties round to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  CHECK(bf16_bits(bits_to_float(0x3F808000u)) == 0x3F80);
  CHECK(bf16_bits(bits_to_float(0x3F818000u)) == 0x3F82);
  CHECK(bf16_bits(bits_to_float(0x3F808001u)) == 0x3F81);
  // Overflow rounds to infinity, NaN stays NaN, infinities stay.
  CHECK(bf16_bits(bits_to_float(0x7F7FFFFFu)) == 0x7F80);
  CHECK(std::isnan(bf16_value(bf16_bits(NAN))));
  CHECK(bf16_bits(INFINITY) == 0x7F80 && bf16_bits(-INFINITY) == 0xFF80);
  // Random values: within half an ulp (2^-9 relative), and the nearest of the two neighbours.
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 3);
  for (int i = 0; i < 100000; i++) {
    float x = nd(rng) * std::pow(10.0f, (float)(i % 7 - 3));
    float y = bf16_value(bf16_bits(x));
    CHECK(std::fabs(y - x) <= std::fabs(x) * (1.0f / 256) + 1e-38f);
    uint32_t u;
    std::memcpy(&u, &x, 4);
    float lo = bits_to_float(u & 0xFFFF0000u), hi = bits_to_float((u & 0xFFFF0000u) + 0x10000u);
    CHECK(std::fabs(y - x) <= std::fabs(lo - x) && std::fabs(y - x) <= std::fabs(hi - x));
  }
}

static void test_kv_slots() {
  const double mib = 1 << 20;
  CHECK(plan_kv_slots(9, 1, 0, 12 * mib, 80e3 * mib) == 9);       // all of them
  CHECK(plan_kv_slots(5000, 1, 0, 12 * mib, 80e3 * mib) == 1024);  // at most 1024 by default
  CHECK(plan_kv_slots(500, 1, 64, 12 * mib, 80e3 * mib) == 64);    // the option bounds it
  CHECK(plan_kv_slots(9, 1, 64, 12 * mib, 80e3 * mib) == 9);       // and never adds slots
  CHECK(plan_kv_slots(1000, 4, 0, 100 * mib, 10e3 * mib) == 50);   // half the memory, no more
  bool threw = false;
  try {
    plan_kv_slots(10, 8, 0, 100 * mib, 1000 * mib);  // 5 fit, one prompt needs 8
  } catch (const std::exception& e) {
    threw = std::string(e.what()).find("8 samples") != std::string::npos;
  }
  CHECK(threw);
}

static void test_attention_limits() {
  CHECK(attention_unsupported(64).empty());
  CHECK(attention_unsupported(128).empty());
  CHECK(!attention_unsupported(256).empty());
}

// Drives the scheduler through a whole generation as the CUDA model does, with a fake model
// that "samples" a token from a seeded stream, and checks the invariants on every step.
// Drives the scheduler through a whole generation with random tokens (1 in 8 stops, or none when
// `stops` is false: every completion runs to max_new) against a
// simulated paged cache: every block holds the tokens written into it, copies are made before a
// step's rows write, and each row reads its completion's earlier positions through the block
// table. Any block reused while a table still holds it, any wrong copy or table entry, shows up
// as a position that does not hold the prompt and the tokens sampled so far.
struct GenRun {
  int64_t preemptions = 0, most_blocks = 0;
};
static GenRun run_generation(std::vector<int64_t> lens, int64_t n, int64_t slots, int64_t max_new, int64_t budget,
                             int64_t blocks, int64_t block, uint32_t seed, bool stops = true) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t p = 0; p < lens.size(); p++) {
    std::vector<int32_t> t;
    for (int64_t i = 0; i < lens[p]; i++) t.push_back((int32_t)(100 + p * 10 + i));
    prompts.push_back(t);
  }
  BatchScheduler s(lens, n, slots, max_new, budget, blocks, block);
  const int64_t width = s.cap() / block;
  std::vector<std::vector<int32_t>> pool(blocks, std::vector<int32_t>(block, -1));
  std::mt19937 rng(seed);
  const std::set<int32_t> stop = {0};
  int steps = 0;
  int64_t most_running = 0;
  bool joined_midway = false;
  auto full = [&](int64_t q) {
    std::vector<int32_t> t = prompts[q / n];
    t.insert(t.end(), s.tokens(q).begin(), s.tokens(q).end());
    return t;
  };
  while (!s.finished()) {
    StepPlan st = s.next(prompts);
    CHECK(!st.empty());
    if (st.empty()) return {};
    steps++;
    CHECK(st.tok.size() == st.slot.size() && st.slot.size() == st.pos.size());
    CHECK(st.pick_row.size() == st.pick_seq.size());
    std::set<int64_t> seqs_this_step;
    std::map<int32_t, int64_t> seq_of_slot;  // a prompt's prefill runs in its first sample's slot
    for (size_t i = 0; i < st.pick_seq.size(); i++) {
      CHECK(seqs_this_step.insert(st.pick_seq[i]).second);  // one pick per completion per step
      CHECK(st.pick_row[i] >= 0 && st.pick_row[i] < (int64_t)st.want.size());
      const int32_t sl = st.slot[st.want[st.pick_row[i]]];
      if (!seq_of_slot.count(sl)) seq_of_slot[sl] = st.pick_seq[i];
    }
    for (const BlockCopy& cp : st.copies) {
      CHECK(cp.from != cp.to && cp.length > 0 && cp.length < block);
      std::copy(pool[cp.from].begin(), pool[cp.from].begin() + cp.length, pool[cp.to].begin());
    }
    const std::vector<int32_t>& table = s.table();
    std::map<int32_t, int64_t> rows_of_slot;
    for (size_t r = 0; r < st.tok.size(); r++) rows_of_slot[st.slot[r]]++;
    int64_t prefill_rows = 0;
    bool has_decode = false;
    for (size_t r = 0; r < st.tok.size(); r++) {
      CHECK(st.slot[r] >= 0 && st.slot[r] < slots && seq_of_slot.count(st.slot[r]));
      CHECK(st.pos[r] >= 0 && st.pos[r] < s.cap());
      const std::vector<int32_t> want = full(seq_of_slot[st.slot[r]]);
      CHECK(st.pos[r] < (int32_t)want.size() && st.tok[r] == want[st.pos[r]]);  // the row feeds the right token
      auto at = [&](int64_t p) -> int32_t& {
        return pool[table[st.slot[r] * width + p / block]][p % block];
      };
      if (rows_of_slot[st.slot[r]] == 1 && st.pos[r] > 0) {  // a decode row reads what came before
        has_decode = true;
        for (int64_t p = 0; p < st.pos[r]; p++) CHECK(at(p) == want[p]);
      } else {
        prefill_rows++;
      }
      at(st.pos[r]) = st.tok[r];
    }
    if (prefill_rows > 0 && has_decode) joined_midway = true;
    std::vector<int32_t> toks;
    for (size_t i = 0; i < st.pick_seq.size(); i++) toks.push_back((int32_t)(stops ? rng() % 8 : 1 + rng() % 7));
    s.commit(st, toks, stop);
    CHECK(s.running() + s.free_slots() == slots);
    most_running = std::max(most_running, s.running());
    CHECK(steps < 100000);
    if (steps >= 100000) return {};
  }
  CHECK(most_running <= slots);
  CHECK(s.free_blocks() == s.blocks());  // every block given back
  CHECK(s.most_blocks_used() <= blocks);
  for (int64_t q = 0; q < (int64_t)lens.size() * n; q++) {
    const auto& t = s.tokens(q);
    CHECK(!t.empty() && (int64_t)t.size() <= max_new);
    if (s.finish(q) == "stop") CHECK(t.back() == 0);
    else CHECK(s.finish(q) == "length" && (int64_t)t.size() == max_new);
    for (size_t i = 0; i + 1 < t.size(); i++) CHECK(t[i] != 0);  // nothing after a stop
  }
  // With fewer slots than completions, later prompts must have joined while others decoded.
  if ((int64_t)lens.size() * n > slots) CHECK(joined_midway);
  return {s.preemptions(), s.most_blocks_used()};
}

// Blocks for every completion at its longest.
static int64_t worst(const std::vector<int64_t>& lens, int64_t n, int64_t max_new, int64_t block) {
  int64_t b = 0;
  for (int64_t l : lens) b += n * ((l + max_new + block - 1) / block);
  return b;
}

static void test_scheduler() {
  const std::vector<int64_t> four = {3, 1, 7, 2}, eight = {3, 1, 7, 2, 5, 5, 9, 1};
  run_generation(four, 1, 64, 5, 4096, worst(four, 1, 5, 4), 4, 1);  // everything in flight at once
  run_generation(eight, 2, 4, 6, 4096, worst(eight, 2, 6, 4), 4, 2);  // continuous batching, 2 samples each
  std::vector<int64_t> many;
  for (int i = 0; i < 300; i++) many.push_back(1 + i % 13);
  GenRun all = run_generation(many, 1, 64, 20, 4096, worst(many, 1, 20, 16), 16, 3);
  CHECK(all.preemptions == 0);
  run_generation(many, 4, 256, 12, 64, worst(many, 4, 12, 4), 4, 4);  // a small prefill budget spreads admissions
  // Shared prefixes: 3 samples of 10-token prompts in blocks of 4 share two full blocks and copy
  // the third; the pool holds far less than the worst case, so the longest completions preempt
  // others, which come back with their tokens and finish.
  std::vector<int64_t> ten(12, 10);
  const int64_t tight = 40;
  CHECK(tight < worst(ten, 3, 30, 4) / 2);
  GenRun t = run_generation(ten, 3, 36, 30, 4096, tight, 4, 5, false);
  CHECK(t.preemptions > 0 && t.most_blocks <= tight);
  // The smallest pool: one completion at its longest, so completions run nearly one at a time.
  GenRun one = run_generation({5, 9, 2}, 2, 6, 12, 4096, (9 + 12 + 3) / 4, 4, 6, false);
  CHECK(one.preemptions > 0);
  // With the worst case in the pool and one slot per completion nothing is preempted; the
  // samples' shared blocks mean fewer blocks are used than the worst case even then.
  GenRun shared = run_generation(ten, 8, 96, 3, 4096, worst(ten, 8, 3, 4), 4, 7);
  CHECK(shared.preemptions == 0 && shared.most_blocks < worst(ten, 8, 3, 4));
  // Completions that fit in their prompt's block never take another: with the pool at the worst
  // case, all of them are admitted in the first step (16 x 32-token prompts, 64 new, blocks of
  // 128; the rule for leaving room to grow once admitted them in two waves of 8).
  {
    const std::vector<int64_t> lens16(16, 32);
    BatchScheduler s(lens16, 1, 16, 64, 4096, worst(lens16, 1, 64, 128), 128);
    std::vector<std::vector<int32_t>> prompts(16, std::vector<int32_t>(32, 1));
    const StepPlan first = s.next(prompts);
    CHECK(first.pick_seq.size() == 16 && s.running() == 16);
    // Each prompt's n samples share its partly filled block and copy it at their first write:
    // they leave room for that, so 4 prompts x 4 samples in a pool of 4 + 12 blocks admit 3.
    const std::vector<int64_t> lens4(4, 32);
    BatchScheduler c(lens4, 4, 16, 64, 4096, 4 + 12, 128);
    std::vector<std::vector<int32_t>> p4(4, std::vector<int32_t>(32, 1));
    CHECK(c.next(p4).pick_seq.size() == 12);
  }
  // max_new 0: finished before the first step.
  BatchScheduler z({2, 3}, 1, 4, 0, 16, 1, 16);
  CHECK(z.finished() && z.finish(0) == "length" && z.tokens(1).empty());
  // Refusals: too few slots for one prompt's samples, an empty prompt, a pool smaller than one
  // completion at its longest.
  bool threw = false;
  try {
    BatchScheduler bad({2}, 4, 3, 5, 16, 1, 16);
  } catch (const std::exception&) {
    threw = true;
  }
  CHECK(threw);
  threw = false;
  try {
    BatchScheduler bad({2, 0}, 1, 3, 5, 16, 1, 16);
  } catch (const std::exception& e) {
    threw = std::string(e.what()).find("prompts[1]") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    BatchScheduler bad({20}, 1, 3, 20, 16, 2, 16);  // 40 positions need 3 blocks
  } catch (const std::exception& e) {
    threw = std::string(e.what()).find("cannot hold one completion") != std::string::npos;
  }
  CHECK(threw);
  // Samples of a prompt share its prefill: one set of prompt rows in blocks every sample's table
  // holds; the first decode step copies the shared partial block for all but one of them.
  BatchScheduler g({6}, 3, 8, 2, 4096, 16, 4);
  StepPlan st = g.next({{5, 6, 7, 8, 9, 10}});
  CHECK(st.tok.size() == 6 && st.want.size() == 1 && st.pick_seq.size() == 3 && st.copies.empty());
  CHECK(g.blocks() - g.free_blocks() == 2);
  g.commit(st, {1, 2, 3}, {0});
  st = g.next({{5, 6, 7, 8, 9, 10}});
  CHECK(st.tok.size() == 3 && st.copies.size() == 2 && st.copies[0].length == 2);
  CHECK(g.blocks() - g.free_blocks() == 4);
}

static void test_kv_blocks() {
  const double mib = 1 << 20;
  CHECK(plan_kv_blocks(500, 10, 1 * mib, 80e3 * mib) == 500);      // the worst case when it fits
  CHECK(plan_kv_blocks(500000, 10, 1 * mib, 1e3 * mib) == 500);    // else half the memory
  bool threw = false;
  try {
    plan_kv_blocks(500, 10, 1 * mib, 10 * mib);  // 5 fit, one completion needs 10
  } catch (const std::exception& e) {
    threw = std::string(e.what()).find("one completion") != std::string::npos;
  }
  CHECK(threw);
}

int main() {
  test_gemm_plan();
  test_block_cache();
  test_bf16();
  test_attention_limits();
  test_kv_slots();
  test_kv_blocks();
  test_scheduler();
  if (failures) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("cuda host tests: all passed\n");
  return 0;
}
