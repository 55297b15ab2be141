// StopMatcher: finds stop strings in generated text that arrives in pieces (one detokenized token
// at a time), so a stop string split across tokens is still caught and never shown to the client.
//
// push() returns the text that is safe to emit: everything except the longest suffix that could
// still grow into a stop string, which is held back. The first stop string to complete wins (the
// earliest end in the stream; on a tie, the longest, i.e. the one starting first); the output then
// ends just before it, or just after it with include_stop_in_output, and stopped is set. Results
// do not depend on how the text is cut into pieces. Empty stop strings are ignored.
// Thread-safety: one per request; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmserve {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops, bool include_stop_in_output = false);

  struct Result {
    std::string text;  // safe to emit now
    bool stopped = false;
    std::string matched;  // the stop string that ended generation (when stopped)
  };
  // After a stop, further pushes return {"", true, matched}.
  Result push(std::string_view text);
  // Held-back text at the end of generation ("" after a stop).
  std::string flush();

  bool is_stopped() const { return is_stopped_; }

 private:
  std::size_t holdback_length() const;

  std::vector<std::string> stops_;
  bool include_stop_in_output_;
  std::string pending_;  // held back: a suffix that is a proper prefix of some stop string
  bool is_stopped_ = false;
  std::string matched_;
};

}  // namespace llmserve
