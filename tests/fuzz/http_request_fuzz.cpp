// Fuzzes the HTTP frontend's request parsing: bodies for /generate and /infer (JSON, and binary
// tensor data after a JSON header) and the path/query decoding. Any input must produce a parsed
// request or a Status — never a crash, hang, leak or undefined behaviour. The first byte picks the
// parser: 0xC0 and above the binary /infer body (the next two bytes, little-endian, are its
// Inference-Header-Content-Length), else its value mod 3 (as the corpus was recorded).
// Also replayed over tests/fuzz/corpus/http by ctest (fuzz_regression_main.cpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "server/http/router.h"
#include "server/kserve/binary_tensors.h"
#include "server/kserve/request_parsing.h"

namespace {

using namespace llmserve;

void parse_infer(const std::string& json_text, std::string_view binary) {
  nlohmann::json body;
  if (!kserve::parse_json_body(json_text, body).is_ok()) return;
  kserve::InputValues inputs;
  kserve::ParsedRequest parsed;
  if (kserve::parse_infer_inputs(body, inputs, parsed, binary).is_ok()) {
    (void)kserve::build_generate_request(inputs, parsed);
    for (const auto& name : parsed.outputs) (void)parsed.is_binary_output(name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] >= 0xC0) {  // binary /infer
    if (input.size() < 2) return 0;
    const size_t header_length =
        static_cast<uint8_t>(input[0]) | (static_cast<uint8_t>(input[1]) << 8);
    const std::string body = input.substr(2);
    kserve::InferBody parts;
    if (!kserve::split_infer_body(body, std::to_string(header_length), parts).is_ok()) return 0;
    parse_infer(std::string(parts.json), parts.binary);
    return 0;
  }
  switch (data[0] % 3) {
    case 0: {  // /generate
      nlohmann::json body;
      if (!kserve::parse_json_body(input, body).is_ok()) return 0;
      kserve::InputValues inputs;
      kserve::ParsedRequest parsed;
      if (kserve::parse_generate_inputs(body, inputs, parsed).is_ok()) {
        (void)kserve::build_generate_request(inputs, parsed);
      }
      break;
    }
    case 1:  // /infer
      parse_infer(input, {});
      break;
    default:
      (void)http::split_path(input);
      (void)http::url_decode(input, true);
      break;
  }
  return 0;
}
