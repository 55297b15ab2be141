// See stop_matcher.h. Invariant between calls: pending_ is the longest suffix of the text seen so
// far that is a proper prefix of a stop string, and no stop string occurs in the emitted text plus
// pending_. So any stop string that a new piece completes starts inside pending_ + piece.
#include "tokenizer/stop_matcher.h"

#include <algorithm>

namespace llmserve {

StopMatcher::StopMatcher(std::vector<std::string> stops, bool include_stop_in_output)
    : include_stop_in_output_(include_stop_in_output) {
  for (std::string& stop : stops) {
    if (!stop.empty()) stops_.push_back(std::move(stop));
  }
}

StopMatcher::Result StopMatcher::push(std::string_view text) {
  if (is_stopped_) return {"", true, matched_};
  pending_ += text;
  // The match that ends first; on equal ends, the longer one.
  std::size_t best_end = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& stop : stops_) {
    const std::size_t pos = pending_.find(stop);
    if (pos == std::string::npos) continue;
    const std::size_t end = pos + stop.size();
    if (end < best_end || (end == best_end && stop.size() > best->size())) {
      best_end = end;
      best = &stop;
    }
  }
  if (best) {
    is_stopped_ = true;
    matched_ = *best;
    Result result{pending_.substr(0, include_stop_in_output_ ? best_end : best_end - best->size()),
                  true, matched_};
    pending_.clear();
    return result;
  }
  const std::size_t keep = holdback_length();
  Result result{pending_.substr(0, pending_.size() - keep), false, ""};
  pending_.erase(0, pending_.size() - keep);
  return result;
}

std::string StopMatcher::flush() {
  std::string text = std::move(pending_);
  pending_.clear();
  return is_stopped_ ? std::string() : text;
}

std::size_t StopMatcher::holdback_length() const {
  std::size_t longest = 0;
  for (const std::string& stop : stops_) {
    // Proper prefixes only: a whole stop string would have been matched.
    const std::size_t max_length = std::min(stop.size() - 1, pending_.size());
    for (std::size_t length = max_length; length > longest; --length) {
      if (std::string_view(pending_).substr(pending_.size() - length) ==
          std::string_view(stop).substr(0, length)) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

}  // namespace llmserve
