#include "model/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace temper {

BatchScheduler::BatchScheduler(std::vector<int64_t> prompt_lens, int64_t n, int64_t slots, int64_t max_new,
                               int64_t prefill_budget)
    : lens_(std::move(prompt_lens)), n_(n), max_new_(max_new), budget_(prefill_budget) {
  if (n_ < 1) throw std::runtime_error("n must be at least 1");
  if (slots < n_)
    throw std::runtime_error("the KV cache has " + std::to_string(slots) + " slots, fewer than the " +
                             std::to_string(n_) + " samples of one prompt");
  for (size_t p = 0; p < lens_.size(); p++) {
    if (lens_[p] < 1) throw std::runtime_error("prompts[" + std::to_string(p) + "] is empty");
    cap_ = std::max(cap_, lens_[p] + max_new_);
  }
  seqs_.resize(lens_.size() * n_);
  for (int64_t s = slots - 1; s >= 0; s--) free_.push_back((int32_t)s);
  if (max_new_ == 0) {
    for (auto& q : seqs_) q.finish = "length";
    done_ = (int64_t)seqs_.size();
  }
}

StepPlan BatchScheduler::next(const std::vector<std::vector<int32_t>>& prompts) {
  StepPlan plan;
  // Decode rows first: each running completion feeds back its last token.
  for (int64_t s = 0; s < (int64_t)seqs_.size(); s++) {
    Seq& q = seqs_[s];
    if (q.slot < 0 || !q.finish.empty() || q.tokens.empty()) continue;
    plan.pick_row.push_back((int64_t)plan.want.size());
    plan.pick_seq.push_back(s);
    plan.want.push_back((int64_t)plan.tok.size());
    plan.tok.push_back(q.tokens.back());
    plan.slot.push_back(q.slot);
    plan.pos.push_back((int32_t)(lens_[s / n_] + (int64_t)q.tokens.size() - 1));
  }
  // Then waiting prompts, in order, while their samples find slots and the prefill budget lasts.
  int64_t prefill = 0;
  while (next_prompt_ < (int64_t)lens_.size() && (int64_t)free_.size() >= n_ &&
         (prefill == 0 || prefill + lens_[next_prompt_] <= budget_)) {
    const int64_t p = next_prompt_++, len = lens_[p];
    const std::vector<int32_t>& toks = prompts[p];
    if ((int64_t)toks.size() != len) throw std::runtime_error("prompts changed while generating");
    std::vector<int32_t> slots;
    for (int64_t j = 0; j < n_; j++) {
      slots.push_back(free_.back());
      free_.pop_back();
      seqs_[p * n_ + j].slot = slots.back();
    }
    running_ += n_;
    for (int64_t t = 0; t < len; t++) {
      plan.tok.push_back(toks[t]);
      plan.slot.push_back(slots[0]);
      plan.pos.push_back((int32_t)t);
    }
    const int64_t row = (int64_t)plan.want.size();
    plan.want.push_back((int64_t)plan.tok.size() - 1);
    for (int64_t j = 0; j < n_; j++) {
      plan.pick_row.push_back(row);
      plan.pick_seq.push_back(p * n_ + j);
      if (j > 0) plan.copies.push_back({slots[0], slots[j], len});
    }
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
      free_.push_back(q.slot);
      q.slot = -1;
      running_--;
      done_++;
    }
  }
}

}  // namespace temper
