// TEMPER_PROFILE=1: generate() adds up the host time of each phase of its decode steps and prints
// the totals to stderr when it returns. Off (the default) a phase costs one branch on a cached
// flag. On the CPU every op has finished when it returns, so the times are the ops' own; on a GPU
// they are launch times unless the phase ends in a download.
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace temper {

class StepProfile {
 public:
  enum Phase { Schedule, Embed, Qkv, RopeKv, Attention, OProj, GateUp, Down, Head, Sample, kPhases };

  static bool enabled() {
    static const bool on = [] {
      const char* v = std::getenv("TEMPER_PROFILE");
      return v && *v && std::strcmp(v, "0") != 0;
    }();
    return on;
  }

  // Time since the last mark goes to `phase` of the current step's kind.
  void mark(Phase phase) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    total_[kind_][phase] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  // Prefill steps (any row that is not a completion's next token) are reported apart from decode.
  void step_kind(bool prefill) { kind_ = prefill ? 1 : 0; }
  // Starts a new interval without charging the time since the last mark to any phase.
  void restart() {
    if (on_) last_ = std::chrono::steady_clock::now();
  }
  void count_step() { steps_[kind_] += on_ ? 1 : 0; }

  ~StepProfile() {
    if (!on_) return;
    static const char* names[kPhases] = {"schedule", "embed", "norm+qkv", "rope+kv", "attention", "o_proj",
                                         "norm+gate/up+swiglu", "down", "head", "sample"};
    for (int k = 0; k < 2; k++) {
      if (steps_[k] == 0) continue;
      double sum = 0;
      for (double t : total_[k]) sum += t;
      std::fprintf(stderr, "TEMPER_PROFILE generate, %s: %lld steps, %.3f ms per step\n",
                   k ? "steps with prefill rows" : "decode steps", steps_[k], 1e3 * sum / (double)steps_[k]);
      for (int p = 0; p < kPhases; p++)
        std::fprintf(stderr, "  %-20s %8.3f ms  %5.1f%%\n", names[p], 1e3 * total_[k][p] / (double)steps_[k],
                     100 * total_[k][p] / sum);
    }
  }

 private:
  const bool on_ = enabled();
  int kind_ = 0;
  double total_[2][kPhases] = {};
  long long steps_[2] = {};
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace temper
