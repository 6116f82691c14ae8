// Continuous batching for generation over a paged KV cache: which rows run in the next decoder
// step, which slot (block-table row) each completion uses, and which cache blocks hold its
// positions. Blocks of `block` positions are handed out as completions grow and come back when
// they finish. A prompt's n samples are admitted together: the prompt is prefilled once, into
// blocks all n tables share, and a sample copies the last, partly filled shared block only when it
// first writes into it (copy on write). A waiting prompt is admitted when slots and blocks are
// free, its prefill rows riding in the same step as the others' decode rows. When a step's decode
// rows need more blocks than are free, the completions admitted last are preempted: their blocks
// go back and they wait to be prefilled again (prompt and the tokens sampled so far), keeping
// their tokens. With a slot for every completion and a pool for the worst case (the CPU) this is
// prefill, then decode.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace temper {

// Positions [0, length) of cache block `from` copied into block `to` (copy on write).
struct BlockCopy {
  int32_t from, to;
  int64_t length;
};

struct StepPlan {
  // Rows of the decoder step: token tok[r] of slot slot[r] at position pos[r].
  std::vector<int32_t> tok, slot, pos;
  // Rows whose logits are needed (indices into the rows), and per pick: which of those rows,
  // and which completion it samples for.
  std::vector<int64_t> want;
  std::vector<int64_t> pick_row, pick_seq;
  // Cache block copies to make before the step's forward (its rows write into the copies).
  std::vector<BlockCopy> copies;
  bool empty() const { return tok.empty(); }
};

class BatchScheduler {
 public:
  // prompt_lens[p] > 0; completions are numbered p * n + sample, as the CPU engine orders them.
  // slots: how many completions may run at once (>= n). prefill_budget: prompt rows admitted per
  // step beyond the first prompt (bounds a step's activations). blocks: the cache pool, of
  // `block` positions each; at least one completion at its longest (longest prompt + max_new).
  BatchScheduler(std::vector<int64_t> prompt_lens, int64_t n, int64_t slots, int64_t max_new, int64_t prefill_budget,
                 int64_t blocks, int64_t block);

  // The next step; call commit with its picks before asking again.
  StepPlan next(const std::vector<std::vector<int32_t>>& prompts);
  // tokens[i] was sampled for plan.pick_seq[i]. Completions that hit a stop token or max_new end.
  void commit(const StepPlan& plan, const std::vector<int32_t>& tokens, const std::set<int32_t>& stop);

  bool finished() const { return done_ == (int64_t)seqs_.size(); }
  int64_t running() const { return running_; }
  int64_t free_slots() const { return (int64_t)free_.size(); }
  int64_t cap() const { return width_ * block_; }  // positions a slot addresses: longest prompt + max_new, rounded up to blocks
  int64_t block() const { return block_; }
  int64_t blocks() const { return (int64_t)refs_.size(); }
  int64_t free_blocks() const { return (int64_t)free_blocks_.size(); }
  int64_t most_blocks_used() const { return most_used_; }
  int64_t preemptions() const { return preemptions_; }
  // The block table [slots, cap / block]: block ids per slot (entries past a slot's length are 0).
  const std::vector<int32_t>& table() const { return table_; }
  // Per completion: sampled tokens and why it ended ("stop", "length", or "" while running).
  const std::vector<int32_t>& tokens(int64_t seq) const { return seqs_[seq].tokens; }
  const std::string& finish(int64_t seq) const { return seqs_[seq].finish; }

 private:
  struct Seq {
    int32_t slot = -1;
    std::vector<int32_t> blocks;  // its table row
    int64_t admitted = 0;         // admission order: the last admitted is preempted first
    std::vector<int32_t> tokens;
    std::string finish;
  };
  int32_t take_block();
  void drop_block(int32_t b);
  void attach(int64_t s, int32_t slot);
  void release(Seq& q);
  void preempt(int64_t s);
  bool may_grow(int64_t s) const;
  bool room_for(int64_t blocks_needed, int64_t growing) const;
  void add_prefill(StepPlan& plan, int32_t slot, const std::vector<int32_t>& toks);

  std::vector<int64_t> lens_;
  int64_t n_, max_new_, budget_, block_, width_ = 0, next_prompt_ = 0, running_ = 0, done_ = 0, admitted_ = 0;
  int64_t most_used_ = 0, preemptions_ = 0;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_;         // slots, a stack: the most recently freed is reused first
  std::vector<int32_t> free_blocks_;  // a stack too, so the pages a pool has touched are reused
  std::vector<int32_t> refs_;         // per block: how many tables hold it
  std::vector<int32_t> table_;
  std::vector<int64_t> resume_;       // preempted completions, waiting to be prefilled again
};

}  // namespace temper
