// Continuous batching for generation: which rows run in the next decoder step and which KV-cache
// slots they use. Every completion holds one slot while it runs; a prompt's n samples are admitted
// together (the prompt is prefilled once, into the first sample's slot, and copied to the others'
// after the step); a completion that stops frees its slot at once and a waiting prompt takes it in
// the next step, its prefill rows riding in the same step as the others' decode rows. With a slot
// for every completion (the CPU) this is prefill, then decode.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace temper {

struct SlotCopy {
  int32_t from, to;
  int64_t length;  // positions [0, length)
};

struct StepPlan {
  // Rows of the decoder step: token tok[r] of slot slot[r] at position pos[r].
  std::vector<int32_t> tok, slot, pos;
  // Rows whose logits are needed (indices into the rows), and per pick: which of those rows,
  // and which completion it samples for.
  std::vector<int64_t> want;
  std::vector<int64_t> pick_row, pick_seq;
  // Cache copies to make after the step's forward and before the next step.
  std::vector<SlotCopy> copies;
  bool empty() const { return tok.empty(); }
};

class BatchScheduler {
 public:
  // prompt_lens[p] > 0; completions are numbered p * n + sample, as the CPU engine orders them.
  // slots: how many completions may hold a cache slot at once (>= n). prefill_budget: prompt
  // rows admitted per step beyond the first prompt (bounds a step's activations).
  BatchScheduler(std::vector<int64_t> prompt_lens, int64_t n, int64_t slots, int64_t max_new, int64_t prefill_budget);

  // The next step; call commit with its picks before asking again.
  StepPlan next(const std::vector<std::vector<int32_t>>& prompts);
  // tokens[i] was sampled for plan.pick_seq[i]. Completions that hit a stop token or max_new end.
  void commit(const StepPlan& plan, const std::vector<int32_t>& tokens, const std::set<int32_t>& stop);

  bool finished() const { return done_ == (int64_t)seqs_.size(); }
  int64_t running() const { return running_; }
  int64_t free_slots() const { return (int64_t)free_.size(); }
  int64_t cap() const { return cap_; }  // positions per slot: longest prompt + max_new
  // Per completion: sampled tokens and why it ended ("stop", "length", or "" while running).
  const std::vector<int32_t>& tokens(int64_t seq) const { return seqs_[seq].tokens; }
  const std::string& finish(int64_t seq) const { return seqs_[seq].finish; }

 private:
  struct Seq {
    int32_t slot = -1;
    std::vector<int32_t> tokens;
    std::string finish;
  };
  std::vector<int64_t> lens_;
  int64_t n_, max_new_, budget_, cap_ = 0, next_prompt_ = 0, running_ = 0, done_ = 0;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_;  // a stack: the most recently freed slot is reused first
};

}  // namespace temper
