// SseParser: splits a text/event-stream body, fed in arbitrary pieces, into the data payloads of
// its events. Handles "\n", "\r\n" and "\r" line ends, multi-line data (joined with "\n"), comment
// lines and fields other than data (ignored). An event is dispatched at its blank line.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace llmserve::bench::load {

class SseParser {
 public:
  using EventFn = std::function<void(std::string_view data)>;
  explicit SseParser(EventFn on_event) : on_event_(std::move(on_event)) {}

  void feed(std::string_view bytes);
  // Dispatches a last event that had no closing blank line (the stream ended).
  void finish();

 private:
  void take_line(std::string_view line);

  EventFn on_event_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;
};

}  // namespace llmserve::bench::load
