// Fuzzes the HTTP frontend's request parsing: bodies for /generate and /infer and the path/query
// decoding. Any input must produce a parsed request or a Status — never a crash, hang, leak or
// undefined behaviour. The first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/http/router.h"
#include "server/kserve/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace llmserve;
  switch (data[0] % 3) {
    case 0: {  // /generate
      nlohmann::json body;
      if (!kserve::parse_json_body(input, body).is_ok()) return 0;
      kserve::InputValues inputs;
      kserve::ParsedRequest parsed;
      if (kserve::parse_generate_inputs(body, inputs, parsed.id).is_ok()) {
        (void)kserve::build_generate_request(inputs, parsed);
      }
      break;
    }
    case 1: {  // /infer
      nlohmann::json body;
      if (!kserve::parse_json_body(input, body).is_ok()) return 0;
      kserve::InputValues inputs;
      kserve::ParsedRequest parsed;
      if (kserve::parse_infer_inputs(body, inputs, parsed).is_ok()) (void)kserve::build_generate_request(inputs, parsed);
      break;
    }
    default:
      (void)http::split_path(input);
      (void)http::url_decode(input, true);
      break;
  }
  return 0;
}
