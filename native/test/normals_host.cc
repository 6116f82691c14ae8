// fill_normals (src/model/normals.cc) against Rng::normal one value at a time: every float bit
// for bit, and the generator left in the same state, over seeds, scales, lengths that do and do
// not fill whole blocks, and blocks drawn on several threads at once.
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "model/normals.h"

using namespace temper;

static void on_threads(int64_t n, const std::function<void(int64_t)>& fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++)
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < n; i += 3) fn(i);
    });
  for (auto& th : threads) th.join();
}

int main() {
  int failures = 0;
  struct Case { uint64_t seed; double scale; int64_t n; };
  const Case cases[] = {{1, 0.02, 1}, {2, 0.02, 32767}, {3, 0.02, 32768}, {4, 1.0, 100001},
                        {12345, 0.02, 3000000}, {7, -3.5, 2500000}, {0, 0.02, 8000000}};
  for (const Case& c : cases) {
    std::vector<float> want((size_t)c.n), got((size_t)c.n);
    Rng serial(c.seed), bulk(c.seed);
    for (int64_t i = 0; i < c.n; i++) want[i] = (float)(c.scale * serial.normal());
    fill_normals(bulk, got.data(), c.n, c.scale, on_threads);
    int64_t differ = 0;
    for (int64_t i = 0; i < c.n; i++) differ += std::memcmp(&want[i], &got[i], 4) != 0;
    const bool same_state = serial.next() == bulk.next() && serial.next() == bulk.next();
    if (differ || !same_state) {
      std::printf("seed %llu scale %g n %lld: %lld values differ, state %s\n", (unsigned long long)c.seed, c.scale,
                  (long long)c.n, (long long)differ, same_state ? "same" : "differs");
      failures++;
    }
  }
  // The jump: one RngJump of 2^k steps is 2^k calls of next().
  for (int k : {0, 1, 5, 12}) {
    Rng a(99), b(99);
    RngJump(k).advance(a);
    for (int64_t i = 0; i < (int64_t(1) << k); i++) b.next();
    if (a.next() != b.next()) std::printf("RngJump(%d) is not 2^%d steps\n", k, k), failures++;
  }
  if (failures) return 1;
  std::printf("all passed\n");
  return 0;
}
