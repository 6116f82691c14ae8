#include "model/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace temper {

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

BatchScheduler::BatchScheduler(std::vector<int64_t> prompt_lens, int64_t n, int64_t slots, int64_t max_new,
                               int64_t prefill_budget, int64_t blocks, int64_t block)
    : lens_(std::move(prompt_lens)), n_(n), max_new_(max_new), budget_(prefill_budget), block_(block) {
  if (n_ < 1) throw std::runtime_error("n must be at least 1");
  if (block_ < 1) throw std::runtime_error("KV-cache blocks must hold at least one position");
  if (slots < n_)
    throw std::runtime_error("the KV cache has " + std::to_string(slots) + " slots, fewer than the " +
                             std::to_string(n_) + " samples of one prompt");
  int64_t longest = 0;
  for (size_t p = 0; p < lens_.size(); p++) {
    if (lens_[p] < 1) throw std::runtime_error("prompts[" + std::to_string(p) + "] is empty");
    longest = std::max(longest, lens_[p] + max_new_);
  }
  width_ = ceil_div(longest, block_);
  if (blocks < width_)
    throw std::runtime_error("the KV cache's " + std::to_string(blocks) + " blocks cannot hold one completion of " +
                             std::to_string(longest) + " positions (" + std::to_string(width_) + " blocks)");
  seqs_.resize(lens_.size() * n_);
  for (int64_t s = slots - 1; s >= 0; s--) free_.push_back((int32_t)s);
  for (int64_t b = blocks - 1; b >= 0; b--) free_blocks_.push_back((int32_t)b);
  refs_.assign(blocks, 0);
  table_.assign(slots * width_, 0);
  if (max_new_ == 0) {
    for (auto& q : seqs_) q.finish = "length";
    done_ = (int64_t)seqs_.size();
  }
}

int32_t BatchScheduler::take_block() {
  if (free_blocks_.empty()) throw std::runtime_error("the KV cache ran out of blocks");  // callers check first
  const int32_t b = free_blocks_.back();
  free_blocks_.pop_back();
  refs_[b] = 1;
  most_used_ = std::max(most_used_, blocks() - free_blocks());
  return b;
}

void BatchScheduler::drop_block(int32_t b) {
  if (--refs_[b] == 0) free_blocks_.push_back(b);
}

// Gives completion s the slot and writes its blocks into the slot's table row.
void BatchScheduler::attach(int64_t s, int32_t slot) {
  Seq& q = seqs_[s];
  q.slot = slot;
  q.admitted = admitted_++;
  std::copy(q.blocks.begin(), q.blocks.end(), table_.begin() + slot * width_);
  running_++;
}

// A completion leaves the running set (finished or preempted): its blocks and slot go back.
void BatchScheduler::release(Seq& q) {
  for (int32_t b : q.blocks) drop_block(b);
  q.blocks.clear();
  std::fill(table_.begin() + q.slot * width_, table_.begin() + (q.slot + 1) * width_, 0);
  free_.push_back(q.slot);
  q.slot = -1;
  running_--;
}

void BatchScheduler::preempt(int64_t s) {
  release(seqs_[s]);
  resume_.push_back(s);
  preemptions_++;
}

// Whether running completion s may still take a block: a position past the blocks it holds, or a
// first write into a block it shares (its prompt's last, partly filled one).
bool BatchScheduler::may_grow(int64_t s) const {
  const Seq& q = seqs_[s];
  if (ceil_div(lens_[s / n_] + max_new_, block_) > (int64_t)q.blocks.size()) return true;
  return !q.blocks.empty() && refs_[q.blocks.back()] > 1;
}

// Admitting completions whose prefill takes `blocks_needed`, `growing` of which may take more
// blocks later, leaves a block for every running completion that may grow, the newcomers
// included, to grow into in the next step, so that admission does not cause preemption straight
// away; one that already holds the blocks of its longest needs none (with blocks of 128
// positions, short completions often do). With nothing running, whatever fits is admitted (the
// pool holds one completion at its longest, so the work always goes on).
bool BatchScheduler::room_for(int64_t blocks_needed, int64_t growing) const {
  if (running_ == 0) return free_blocks() >= blocks_needed;
  int64_t running_growing = 0;
  for (int64_t s = 0; s < (int64_t)seqs_.size(); s++)
    if (seqs_[s].slot >= 0 && may_grow(s)) running_growing++;
  return free_blocks() - blocks_needed >= running_growing + growing;
}

void BatchScheduler::add_prefill(StepPlan& plan, int32_t slot, const std::vector<int32_t>& toks) {
  for (size_t t = 0; t < toks.size(); t++) {
    plan.tok.push_back(toks[t]);
    plan.slot.push_back(slot);
    plan.pos.push_back((int32_t)t);
  }
  plan.want.push_back((int64_t)plan.tok.size() - 1);
}

StepPlan BatchScheduler::next(const std::vector<std::vector<int32_t>>& prompts) {
  StepPlan plan;
  // Decode rows first: each running completion feeds back its last token, writing position pos.
  // The block pos falls in is new when pos starts a block, and copied when it is shared (the
  // prompt's last partial block); when no block is free, the completion admitted last that has
  // no row in this step yet is preempted (this one, if it is that one).
  std::vector<bool> has_row(seqs_.size(), false);
  for (int64_t s = 0; s < (int64_t)seqs_.size(); s++) {
    Seq& q = seqs_[s];
    if (q.slot < 0 || !q.finish.empty() || q.tokens.empty()) continue;
    const int64_t pos = lens_[s / n_] + (int64_t)q.tokens.size() - 1, at = pos / block_;
    const bool fresh = at == (int64_t)q.blocks.size(), shared = !fresh && refs_[q.blocks[at]] > 1;
    if (fresh || shared) {
      while (free_blocks_.empty()) {
        int64_t victim = -1;
        for (int64_t o = 0; o < (int64_t)seqs_.size(); o++)
          if (seqs_[o].slot >= 0 && !has_row[o] && (victim < 0 || seqs_[o].admitted > seqs_[victim].admitted))
            victim = o;
        preempt(victim);  // s itself is a candidate, so there is one
        if (victim == s) break;
      }
      if (q.slot < 0) continue;
      const int32_t b = take_block();
      if (fresh) {
        q.blocks.push_back(b);
      } else {
        plan.copies.push_back({q.blocks[at], b, pos % block_});
        drop_block(q.blocks[at]);
        q.blocks[at] = b;
      }
      table_[q.slot * width_ + at] = b;
    }
    has_row[s] = true;
    plan.pick_row.push_back((int64_t)plan.want.size());
    plan.pick_seq.push_back(s);
    plan.want.push_back((int64_t)plan.tok.size());
    plan.tok.push_back(q.tokens.back());
    plan.slot.push_back(q.slot);
    plan.pos.push_back((int32_t)pos);
  }
  int64_t prefill = 0;
  auto budget_allows = [&](int64_t rows) { return prefill == 0 || prefill + rows <= budget_; };
  // Then preempted completions, first preempted first: prompt and sampled tokens prefilled again
  // into blocks of their own, the last token's row sampling the next.
  while (!resume_.empty() && !free_.empty()) {
    const int64_t s = resume_.front();
    Seq& q = seqs_[s];
    std::vector<int32_t> toks = prompts[s / n_];
    toks.insert(toks.end(), q.tokens.begin(), q.tokens.end());
    const int64_t rows = (int64_t)toks.size(), need = ceil_div(rows, block_);
    const bool grows = ceil_div(lens_[s / n_] + max_new_, block_) > need;
    if (!budget_allows(rows) || !room_for(need, grows ? 1 : 0)) break;
    resume_.erase(resume_.begin());
    for (int64_t i = 0; i < need; i++) q.blocks.push_back(take_block());
    const int32_t slot = free_.back();
    free_.pop_back();
    attach(s, slot);
    plan.pick_row.push_back((int64_t)plan.want.size());
    plan.pick_seq.push_back(s);
    add_prefill(plan, slot, toks);
    prefill += rows;
  }
  // Then waiting prompts, in order, while their samples find slots, the blocks their shared
  // prefill takes are free and the prefill budget lasts.
  // A prompt's samples may grow when their longest takes more blocks than the prompt, or when they
  // share a partly filled last block (each copies it at its first write).
  auto samples_growing = [&](int64_t len) {
    return ceil_div(len + max_new_, block_) > ceil_div(len, block_) || (n_ > 1 && len % block_ != 0) ? n_ : 0;
  };
  while (resume_.empty() && next_prompt_ < (int64_t)lens_.size() && (int64_t)free_.size() >= n_ &&
         budget_allows(lens_[next_prompt_]) &&
         room_for(ceil_div(lens_[next_prompt_], block_), samples_growing(lens_[next_prompt_]))) {
    const int64_t p = next_prompt_++, len = lens_[p];
    const std::vector<int32_t>& toks = prompts[p];
    if ((int64_t)toks.size() != len) throw std::runtime_error("prompts changed while generating");
    std::vector<int32_t> shared;
    for (int64_t i = 0; i < ceil_div(len, block_); i++) shared.push_back(take_block());
    for (int32_t b : shared) refs_[b] = (int32_t)n_;
    int32_t first = -1;
    for (int64_t j = 0; j < n_; j++) {
      seqs_[p * n_ + j].blocks = shared;
      const int32_t slot = free_.back();
      free_.pop_back();
      attach(p * n_ + j, slot);
      if (j == 0) first = slot;
      plan.pick_row.push_back((int64_t)plan.want.size());
      plan.pick_seq.push_back(p * n_ + j);
    }
    add_prefill(plan, first, toks);
    prefill += len;
  }
  return plan;
}

void BatchScheduler::commit(const StepPlan& plan, const std::vector<int32_t>& tokens, const std::set<int32_t>& stop) {
  if (tokens.size() != plan.pick_seq.size()) throw std::runtime_error("commit: one token per pick expected");
  for (size_t i = 0; i < tokens.size(); i++) {
    Seq& q = seqs_[plan.pick_seq[i]];
    q.tokens.push_back(tokens[i]);
    if (stop.count(tokens[i])) q.finish = "stop";
    else if ((int64_t)q.tokens.size() >= max_new_) q.finish = "length";
    if (!q.finish.empty()) {
      release(q);
      done_++;
    }
  }
}

}  // namespace temper
