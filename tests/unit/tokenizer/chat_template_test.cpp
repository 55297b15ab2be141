// ChatTemplate: each Jinja construct with hand-written expected output, Hugging Face's whitespace
// settings (trim_blocks, lstrip_blocks), error reporting, the default template, and concurrent
// rendering. Byte-for-byte agreement with jinja2 on real templates is checked by
// tests/e2e/chat_template_diff_test.sh.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/status.h"

namespace llmserve {
namespace {

using Json = nlohmann::json;

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};

std::string render(std::string_view source,
                   const std::vector<ChatMessage>& messages = kConversation,
                   const Json& extra = Json::object(), bool add_generation_prompt = true) {
  return ChatTemplate::compile(source).render(messages, add_generation_prompt, "<s>", "</s>",
                                              extra);
}

// Renders with no messages; for expression tests.
std::string eval(std::string_view source, const Json& extra = Json::object()) {
  return render(source, {}, extra);
}

Error render_error(std::string_view source,
                   const std::vector<ChatMessage>& messages = kConversation) {
  try {
    render(source, messages);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << source;
  return Error(StatusCode::kOk, "");
}

Error compile_error(std::string_view source) {
  try {
    (void)ChatTemplate::compile(source);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << source;
  return Error(StatusCode::kOk, "");
}

TEST(ChatTemplateTest, TextAndOutput) {
  EXPECT_EQ(eval("plain text"), "plain text");
  EXPECT_EQ(eval("{{ 'a' }}{{ 1 }}{{ 2.5 }}{{ true }}{{ none }}{{ [1, 'x'] }}{{ {'k': 'v'} }}"),
            "a12.5TrueNone[1, 'x']{'k': 'v'}");
  EXPECT_EQ(eval("{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}"), "<s>|</s>|True");
  EXPECT_EQ(eval("a{# comment #}b"), "ab");
}

TEST(ChatTemplateTest, TrailingNewlineOfSourceIsDropped) {
  EXPECT_EQ(eval("x\n"), "x");
  EXPECT_EQ(eval("x\n\n"), "x\n");
  EXPECT_EQ(eval("a\r\nb"), "a\nb");
}

TEST(ChatTemplateTest, WhitespaceControlMarkers) {
  EXPECT_EQ(eval("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(eval("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  EXPECT_EQ(eval("a {#- c -#} b"), "ab");
}

TEST(ChatTemplateTest, TrimBlocksRemovesOneNewlineAfterBlockTags) {
  EXPECT_EQ(eval("{% if true %}\nx\n{% endif %}\ny"), "x\ny");
  EXPECT_EQ(eval("{% if true %}\n\nx{% endif %}"), "\nx");
  // Not after expressions.
  EXPECT_EQ(eval("{{ 'x' }}\ny"), "x\ny");
  // "+%}" keeps it.
  EXPECT_EQ(eval("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(eval("{# c #}\nx"), "x");
}

TEST(ChatTemplateTest, LstripBlocksRemovesIndentBeforeBlockTags) {
  EXPECT_EQ(eval("a\n    {% if true %}\n    b\n    {% endif %}\nc"), "a\n    b\nc");
  // Only when the tag starts the line, and never before {{.
  EXPECT_EQ(eval("a  {% if true %}b{% endif %}"), "a  b");
  EXPECT_EQ(eval("a\n  {{ 'b' }}"), "a\n  b");
  // "{%+" keeps the indent.
  EXPECT_EQ(eval("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(eval("  {% if true %}x{% endif %}"), "x");
}

TEST(ChatTemplateTest, IfElifElse) {
  const std::string t = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(eval(t, {{"n", 1}}), "one");
  EXPECT_EQ(eval(t, {{"n", 2}}), "two");
  EXPECT_EQ(eval(t, {{"n", 3}}), "many");
}

TEST(ChatTemplateTest, ForLoopVariables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}"
                   "{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}"),
            "10TrueFalse44;21FalseFalse43;32FalseFalse42;43FalseTrue41;");
  EXPECT_EQ(
      eval("{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{% endfor %}"),
      "ab1a2");
}

TEST(ChatTemplateTest, ForLoopFilterElseAndUnpacking) {
  EXPECT_EQ(render("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}"
                   "={{ m.content }} {% endfor %}"),
            "1/2=Hi 2/2=Bye ");
  EXPECT_EQ(eval("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(eval("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}"),
            "a=1,b=2,");
  EXPECT_EQ(eval("{% for c in 'hé' %}[{{ c }}]{% endfor %}"), "[h][é]");
  EXPECT_EQ(eval("{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}"), "xy");
}

TEST(ChatTemplateTest, BreakAndContinue) {
  EXPECT_EQ(eval("{% for i in range(10) %}{% if i == 4 %}{% break %}{% endif %}"
                 "{% if i % 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}"),
            "02");
}

TEST(ChatTemplateTest, SetScopingAndNamespace) {
  EXPECT_EQ(eval("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  // A set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(eval("{% set x = 1 %}{% for i in [5] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(eval("{% set ns = namespace(x=1) %}{% for i in [5, 6] %}{% set ns.x = ns.x + i %}"
                 "{% endfor %}{{ ns.x }}"),
            "12");
  EXPECT_EQ(eval("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(eval("{% set block %}x{{ 1 + 1 }}{% endset %}[{{ block }}]"), "[x2]");
}

TEST(ChatTemplateTest, Macros) {
  EXPECT_EQ(eval("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                 "{{ greet('Ann') }} {{ greet('Bob', punct='?') }}"),
            "Hi Ann! Hi Bob?");
  // A macro smuggled out of the loop that defined it fails cleanly instead of reading freed memory.
  const Error e = render_error(
      "{% set ns = namespace() %}{% for i in [1] %}{% macro m() %}x{% endmacro %}"
      "{% set ns.m = m %}{% endfor %}{{ ns.m() }}");
  EXPECT_NE(std::string(e.what()).find("macro 'm' called outside"), std::string::npos) << e.what();
}

TEST(ChatTemplateTest, Operators) {
  EXPECT_EQ(eval("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 3 }} {{ 1 / 4 }} "
                 "{{ 10 / 2 }} {{ 0.1 + 0.2 }}"),
            "7 3 -4 2 8 0.25 5.0 0.30000000000000004");
  EXPECT_EQ(
      eval(
          "{{ 'a' ~ 1 ~ none ~ undefined_name }} {{ 'ab' + 'cd' }} {{ [1] + [2] }} {{ 'ab' * 2 }}"),
      "a1None abcd [1, 2] abab");
  EXPECT_EQ(eval("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 2 < 3 }} {{ 'b' >= 'a' }} {{ 1 == true }}"),
            "True True True True True");
  EXPECT_EQ(eval("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [3] }}"),
            "True True True False");
  EXPECT_EQ(eval("{{ not 0 }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' and 'z' }}|"), "True x y |");
  EXPECT_EQ(eval("{{ 'yes' if 1 > 0 else 'no' }} {{ 'no' if false }}|"), "yes |");
}

TEST(ChatTemplateTest, TuplesChainsAndFormatting) {
  EXPECT_EQ(
      eval("{{ (1, 'a') }} {{ (1,) }} {{ () }} {{ ('a', 'b') | join('-') }} {{ (1, 2) | tojson }}"),
      "(1, 'a') (1,) () a-b [1, 2]");
  EXPECT_EQ(eval("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'abc' in 'xabcx' }}"),
            "True False True");
  EXPECT_EQ(eval("{{ '%s=%d (%.1f) %5s|%-3s|%%' % ('k', 7, 2.25, 'r', 'l') }} {{ '%s' % 'one' }}"),
            "k=7 (2.2)     r|l  |% one");
  EXPECT_EQ(eval("{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 7 | round }}"),
            "2.0 4.0 2.67 7");
}

TEST(ChatTemplateTest, GenerationTagRendersItsBody) {
  // transformers' AssistantTracker extension; the mask it computes is not needed for serving.
  EXPECT_EQ(
      render(
          "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]"
          "{% endgeneration %}{% endif %}{% endfor %}"),
      "[Hello]");
}

TEST(ChatTemplateTest, AttributeItemAndSlice) {
  EXPECT_EQ(
      render("{{ messages[1].content }}{{ messages[-1]['role'] }}{{ messages[9] is defined }}"),
      "HiuserFalse");
  EXPECT_EQ(eval("{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1, 2, 3][1:] }} {{ [1, 2, 3][:-1] }} "
                 "{{ [1, 2, 3, 4][::2] }} {{ 'héllo'[1] }}"),
            "el olleh [2, 3] [1, 2] [1, 3] é");
  EXPECT_EQ(render("{% for m in messages[1:] %}{{ m.role[0] }}{% endfor %}"), "uau");
}

TEST(ChatTemplateTest, Tests) {
  EXPECT_EQ(
      eval("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 'a' is string }} "
           "{{ {} is mapping }} {{ [] is iterable }} {{ 1 is number }} {{ 1 is not string }}"),
      "False True True True True True True True");
  EXPECT_EQ(
      eval("{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby(3) }} {{ 'a' is eq('a') }} "
           "{{ true is boolean }} {{ 1 is integer }} {{ 1.5 is float }} {{ 'a' is in 'abc' }}"),
      "True True True True True True True True");
}

TEST(ChatTemplateTest, UndefinedIsFalsyAndEmpty) {
  EXPECT_EQ(eval("[{{ missing }}]{% if missing %}x{% endif %}{% for i in missing %}y{% endfor %}"
                 "{{ missing | length }}{{ missing | default('d') }}"),
            "[]0d");
  EXPECT_EQ(render("[{{ messages[0].missing }}]{{ messages[0].missing is defined }}"), "[]False");
}

TEST(ChatTemplateTest, StringFilters) {
  EXPECT_EQ(eval("{{ '  x  ' | trim }}|{{ 'aB' | upper }}|{{ 'aB' | lower }}|{{ 'hELLO wORLD' | "
                 "capitalize }}"
                 "|{{ 'big-bad wolf' | title }}|{{ 'aXa' | replace('a', 'b') }}|{{ 5 | string }}"),
            "x|AB|ab|Hello world|Big-Bad Wolf|bXb|5");
  EXPECT_EQ(eval("{{ 'straße' | upper }} {{ 'ÀΣΑΣ' | lower }}"), "STRASSE àσας");
  EXPECT_EQ(
      eval("{{ '42' | int + 1 }} {{ 'x' | int }} {{ 3.7 | int }} {{ '' | default('e', true) }}"),
      "43 0 3 e");
  EXPECT_EQ(eval("{{ 'a\nb' | indent(2) }}|{{ 'hé' | length }}"), "a\n  b|2");
}

TEST(ChatTemplateTest, ListFilters) {
  EXPECT_EQ(eval("{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}{{ [1, 2] | length }}"
                 "{{ ['a', 'b'] | join(', ') }}{{ [3, 1, 2] | sort | list }}{{ [1, 2] | reverse | "
                 "list }}"),
            "132a, b[1, 2, 3][2, 1]");
  EXPECT_EQ(
      render("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | "
             "join(',') }} "
             "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }} "
             "{{ messages | map(attribute='role') | select('equalto', 'user') | list | length }}"),
      "Hi,Bye ['system', 'assistant'] 2");
  EXPECT_EQ(eval("{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}{{ {'b': 2} | items "
                 "| list }}"),
            "a1[('b', 2)]");
}

TEST(ChatTemplateTest, ToJsonMatchesTransformers) {
  // json.dumps(ensure_ascii=False): ", " and ": " separators, no HTML escaping, unicode kept.
  EXPECT_EQ(eval("{{ {'b': [1, 2.0, none, true], 'a': 'é<\"\n'} | tojson }}"),
            R"({"b": [1, 2.0, null, true], "a": "é<\"\n"})");
  EXPECT_EQ(eval("{{ {'a': [1], 'b': {}} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(eval("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ [1, 2] | "
                 "tojson(separators=(',', ':')) }}"),
            R"({"a": 2, "b": 1} [1,2])");
  // extra's nested objects arrive in nlohmann::json key order.
  EXPECT_EQ(
      eval("{{ tools | tojson }}", {{"tools", Json::array({{{"name", "f"}, {"args", {1, 2}}}})}}),
      R"([{"args": [1, 2], "name": "f"}])");
}

TEST(ChatTemplateTest, Methods) {
  EXPECT_EQ(eval("{{ ' x '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a  '.rstrip() }}|{{ 'a b  "
                 "c'.split() }}"
                 "|{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('ab') }}|{{ "
                 "'abc'.endswith(('x', 'c')) }}"),
            "x|axx|a|['a', 'b', 'c']|['a', 'b,c']|True|True");
  EXPECT_EQ(eval("{{ 'ab'.upper() }}{{ 'AB'.lower() }}{{ 'hello world'.title() }}"),
            "ABabHello World");
  EXPECT_EQ(eval("{% set d = {'a': 1, 'b': 2} %}{{ d.items() | list }}{{ d.keys() | list }}{{ "
                 "d.get('a') }}"
                 "{{ d.get('z', 'dz') }}{{ d.get('z') }}{{ d.values() | list }}"),
            "[('a', 1), ('b', 2)]['a', 'b']1dzNone[1, 2]");
}

TEST(ChatTemplateTest, MessageFieldsAndExtraContext) {
  ChatMessage with_name{.role = "user", .content = "hi", .name = "ann"};
  ChatMessage with_tools{.role = "assistant",
                         .content = "",
                         .tool_calls = Json::array({{{"function", {{"name", "f"}}}}})};
  ChatMessage tool_reply{.role = "tool", .content = "42", .tool_call_id = "call_1"};
  EXPECT_EQ(
      render(
          "{% for m in messages %}{{ m.name }}|{{ m.tool_calls[0].function.name if m.tool_calls }}"
          "|{{ m.tool_call_id }};{% endfor %}{{ 'tool_calls' in messages[0] }}",
          {with_name, with_tools, tool_reply}),
      "ann||;|f|;||call_1;False");
  EXPECT_EQ(eval("{{ date_string }} {{ flag }}", {{"date_string", "1 Jan 2025"}, {"flag", true}}),
            "1 Jan 2025 True");
}

TEST(ChatTemplateTest, ToolsAndDocumentsAreNoneUnlessGiven) {
  EXPECT_EQ(eval("{{ tools is defined }} {{ tools is none }} {{ documents is none }}"),
            "True True True");
  EXPECT_EQ(eval("{{ tools | length }}", {{"tools", Json::array({1, 2})}}), "2");
}

TEST(ChatTemplateTest, StrftimeNowIsAvailable) {
  EXPECT_EQ(eval("{{ strftime_now('%Y') | length }} {{ strftime_now is defined }}"), "4 True");
}

TEST(ChatTemplateTest, RaiseExceptionCarriesTheTemplateMessage) {
  const Error e = render_error(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% "
      "endif %}");
  EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "System role not supported");
}

TEST(ChatTemplateTest, RuntimeErrorsNameTheLocation) {
  const Error e = render_error("line one\n{{ missing.attr }}");
  EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("line 2 column"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("'missing' is undefined"), std::string::npos) << e.what();
  EXPECT_NE(std::string(render_error("{{ 'a' + 1 }}").what()).find("unsupported operand"),
            std::string::npos);
  EXPECT_NE(std::string(render_error("{{ [] | nosuchfilter }}").what())
                .find("unknown filter 'nosuchfilter'"),
            std::string::npos);
  EXPECT_NE(std::string(render_error("{{ 1 / 0 }}").what()).find("division by zero"),
            std::string::npos);
}

TEST(ChatTemplateTest, UnsupportedSyntaxIsRejectedAtCompile) {
  const Error include = compile_error("ok\n  {% include 'other.jinja' %}");
  EXPECT_EQ(include.code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(include.what(), "chat template line 2 column 6: unsupported tag 'include'");
  EXPECT_NE(
      std::string(compile_error("{% for x in y recursive %}{% endfor %}").what()).find("recursive"),
      std::string::npos);
  EXPECT_NE(std::string(compile_error("{% if x %}unclosed").what()).find("expected 'endif'"),
            std::string::npos);
  EXPECT_NE(std::string(compile_error("{{ 'unterminated }}").what()).find("unterminated string"),
            std::string::npos);
  EXPECT_NE(std::string(compile_error("{{ 1 + }}").what()).find("line 1 column 8"),
            std::string::npos);
  EXPECT_NE(std::string(compile_error("{% call foo() %}{% endcall %}").what())
                .find("unsupported tag 'call'"),
            std::string::npos);
}

TEST(ChatTemplateTest, DefaultTemplate) {
  const std::vector<ChatMessage> messages = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(render(default_chat_template(), messages), "SYSTEM:\nS\n\nUSER:\nU\n\nASSISTANT:\n");
  EXPECT_EQ(render(default_chat_template(), messages, Json::object(), false),
            "SYSTEM:\nS\n\nUSER:\nU\n\n");
  // It is models/default's template, so that model renders the same with or without its config.
  std::ifstream config(std::string(LLMSERVE_SOURCE_DIR) + "/models/default/tokenizer_config.json");
  ASSERT_TRUE(config.good());
  EXPECT_EQ(Json::parse(config)["chat_template"].get<std::string>(), default_chat_template());
}

TEST(ChatTemplateTest, RenderIsConstAndThreadSafe) {
  const ChatTemplate chat_template = ChatTemplate::compile(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "{{ m.role }}:{{ m.content }};{% endfor %}{{ ns.n }}");
  const std::string expected = "system:Be brief.;user:Hi;assistant:Hello;user:Bye;4";
  std::vector<std::thread> threads;
  std::atomic<int> num_mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (chat_template.render(kConversation, false, "", "") != expected) ++num_mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(num_mismatches.load(), 0);
}

}  // namespace
}  // namespace llmserve
