#include "server/http/json_body.h"

namespace llmserve {
namespace {

struct TooDeep {};

}  // namespace

Status parse_json(std::string_view body, nlohmann::json& out) {
  using json = nlohmann::json;
  // The callback sees every event with the depth it happens at; thrown, TooDeep stops the parse
  // before the deep value exists.
  const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t event, json&) {
    if (depth >= kMaxJsonDepth &&
        (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    out = json::parse(body, limit_depth);
  } catch (const TooDeep&) {
    out = json();
    return invalid_argument("the request body nests arrays/objects more than {} levels deep",
                            kMaxJsonDepth);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    out = json();
    return invalid_argument("malformed JSON in the request body: {}", e.what());
  }
  return Status::ok();
}

}  // namespace llmserve
