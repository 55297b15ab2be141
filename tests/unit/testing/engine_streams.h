// Reading a request's outputs off its RequestStream, and submitting with the status checked: what
// the engine-level tests (tests/unit/engine) share.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/engine.h"

namespace llmserve::testing {

struct Collected {
  std::vector<int32_t> tokens;
  RequestOutput last;
  bool is_done = false;
};

// Reads outputs into `c` until it has `min_tokens` tokens or the stream ends (a minute at most
// per output: a stuck stream fails the test instead of hanging it).
inline void read_until(RequestStream& stream, Collected& c, size_t min_tokens = SIZE_MAX) {
  RequestOutput out;
  while (!c.is_done && c.tokens.size() < min_tokens) {
    if (!stream.next(out, std::chrono::seconds(60))) {
      ADD_FAILURE() << "stream did not finish";
      return;
    }
    c.tokens.insert(c.tokens.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.is_final()) {
      c.last = out;
      c.is_done = true;
    }
  }
}

// Every output of the stream, to its final one.
inline Collected drain(RequestStream& stream) {
  Collected c;
  read_until(stream, c);
  return c;
}

inline std::shared_ptr<RequestStream> must_submit(Engine& e, Request r) {
  std::shared_ptr<RequestStream> s;
  Status st = e.submit(std::move(r), s);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return s;
}

}  // namespace llmserve::testing
