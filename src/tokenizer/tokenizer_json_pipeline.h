// Readers for the text pipeline of tokenizer.json (normalizer, pre_tokenizer, decoder) and the
// field-path helpers the tokenizer.json loader shares with them. Internal to src/tokenizer/.
// Every recognised but unsupported component fails with kUnimplemented naming its field path.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "tokenizer/decoder.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace llmserve::tokenizer_json {

std::string field(std::string_view where, std::string_view key);
std::string element(std::string_view where, std::size_t i);
std::string type_of(const json_fields::Json& node, std::string_view where);
// The array under key, or a failure naming it.
const json_fields::Json& require_array(const json_fields::Json& node, std::string_view key,
                                       std::string_view where);

void read_normalizer(const json_fields::Json& node, std::string_view where, Normalizer& out);
void read_pre_tokenizer(const json_fields::Json& node, std::string_view where, PreTokenizer& out);
void read_decoder(const json_fields::Json& node, std::string_view where, Decoder& out);

}  // namespace llmserve::tokenizer_json
