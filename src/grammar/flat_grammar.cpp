#include "grammar/flat_grammar.h"

#include <algorithm>
#include <map>
#include <utility>

namespace llmserve::grammar {
namespace {

// Bounds that keep a hostile grammar (x{0,100000000}) from exhausting memory: the lowering
// refuses beyond them instead.
constexpr size_t kMaxRules = 200000;
constexpr size_t kMaxItems = 4000000;
// A code point class is split into the alternatives of its rule while the rule stays below this
// many alternatives; beyond it the class becomes a helper rule.
constexpr size_t kMaxSplitAlternatives = 64;

// The UTF-8 encodings of [lo, hi] (no surrogates inside) as sequences of byte ranges, the way
// RE2 and Rust's utf8-ranges split them: first at encoding-length boundaries, then wherever a
// continuation byte would not cover its full 80-BF range.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<Sequence>& out) {
  static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t end : kLengthEnds) {
    if (lo <= end && hi > end) {
      utf8_sequences(lo, end, out);
      utf8_sequences(end + 1, hi, out);
      return;
    }
  }
  if (hi < 0x80) {
    out.push_back(
        {Element::byte_set(ByteSet::range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)))});
    return;
  }
  for (int i = 1; i < 4; ++i) {
    uint32_t m = (uint32_t{1} << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::string a, b;
  append_utf8(a, lo);
  append_utf8(b, hi);
  Sequence seq;
  for (size_t i = 0; i < a.size(); ++i) {
    seq.push_back(
        Element::byte_set(ByteSet::range(static_cast<uint8_t>(a[i]), static_cast<uint8_t>(b[i]))));
  }
  out.push_back(std::move(seq));
}

std::vector<Sequence> class_sequences(const std::vector<CodepointRange>& ranges) {
  std::vector<Sequence> out;
  for (const auto& r : ranges) {
    uint32_t lo = r.lo, hi = std::min(r.hi, kMaxCodepoint);
    // Surrogates are not scalar values; UTF-8 never encodes them.
    if (lo < 0xD800 && hi >= 0xD800) {
      utf8_sequences(lo, 0xD7FF, out);
      lo = 0xE000;
    } else if (lo >= 0xD800 && lo <= 0xDFFF) {
      lo = 0xE000;
    }
    if (lo <= hi) utf8_sequences(lo, hi, out);
  }
  return out;
}

class Lowering {
 public:
  explicit Lowering(Grammar g) : g_(std::move(g)) {}

  Status run(FlatGrammar& out) {
    if (g_.root() < 0 || g_.root() >= g_.num_rules())
      return invalid_argument("grammar has no root");
    if (Status s = check_elements(); !s.is_ok()) return s;
    for (int32_t id = 0; id < g_.num_rules(); ++id) split_codepoints(id);
    for (int32_t id = 0; id < g_.num_rules(); ++id) {
      if (static_cast<size_t>(g_.num_rules()) > kMaxRules) {
        return invalid_argument("grammar too large after expanding repetitions (over {} rules)",
                                kMaxRules);
      }
      // A copy: lowering adds helper rules, which may move this rule's storage.
      std::vector<Sequence> alternatives = g_.rule(id).alternatives;
      std::vector<Sequence> lowered;
      for (const auto& seq : alternatives) {
        Sequence flat;
        for (const auto& e : seq) lower_into(e, flat);
        lowered.push_back(std::move(flat));
      }
      g_.rule(id).alternatives = std::move(lowered);
    }
    return emit(out);
  }

 private:
  Status check_elements() const {
    for (int32_t id = 0; id < g_.num_rules(); ++id) {
      const Rule& r = g_.rule(id);
      if (r.alternatives.empty()) return invalid_argument("rule '{}' has no alternatives", r.name);
      for (const auto& seq : r.alternatives) {
        for (const auto& e : seq) {
          bool calls = e.kind == Element::Kind::kRule || e.kind == Element::Kind::kRepeat;
          if (calls && (e.rule < 0 || e.rule >= g_.num_rules())) {
            return invalid_argument("rule '{}' refers to an undefined rule", r.name);
          }
          if (e.kind == Element::Kind::kRepeat && (e.min < 0 || (e.max >= 0 && e.max < e.min))) {
            return invalid_argument("rule '{}': bad repetition {{{},{}}}", r.name, e.min, e.max);
          }
          if (e.kind == Element::Kind::kCodepoints && e.codepoints.empty()) {
            return invalid_argument("rule '{}': empty character class", r.name);
          }
        }
      }
    }
    return Status::ok();
  }

  // Replaces code point classes by byte sequences: in place (one alternative per sequence) while
  // the rule stays small, through a helper rule otherwise.
  void split_codepoints(int32_t id) {
    std::vector<Sequence> done;
    std::vector<Sequence> todo = g_.rule(id).alternatives;
    while (!todo.empty()) {
      Sequence seq = std::move(todo.back());
      todo.pop_back();
      size_t i = 0;
      while (i < seq.size() && seq[i].kind != Element::Kind::kCodepoints) ++i;
      if (i == seq.size()) {
        done.push_back(std::move(seq));
        continue;
      }
      std::vector<Sequence> parts = class_sequences(seq[i].codepoints);
      if (done.size() + todo.size() + parts.size() <= kMaxSplitAlternatives) {
        for (auto& part : parts) {
          Sequence s(seq.begin(), seq.begin() + static_cast<std::ptrdiff_t>(i));
          s.insert(s.end(), part.begin(), part.end());
          s.insert(s.end(), seq.begin() + static_cast<std::ptrdiff_t>(i) + 1, seq.end());
          todo.push_back(std::move(s));
        }
      } else {
        int32_t helper = g_.add_rule(g_.rule(id).name + "_char", std::move(parts));
        seq[i] = Element::ref(helper);
        todo.push_back(std::move(seq));
      }
    }
    // todo is a stack; restore the written order of alternatives for readable dumps.
    std::reverse(done.begin(), done.end());
    g_.rule(id).alternatives = std::move(done);
  }

  void lower_into(const Element& e, Sequence& out) {
    switch (e.kind) {
      case Element::Kind::kLiteral:
        for (char c : e.literal)
          out.push_back(Element::byte_set(ByteSet::of(static_cast<uint8_t>(c))));
        return;
      case Element::Kind::kRepeat:
        lower_repeat(e, out);
        return;
      default:
        out.push_back(e);
    }
  }

  void lower_repeat(const Element& e, Sequence& out) {
    const Rule& x = g_.rule(e.rule);
    bool inline_body = x.alternatives.size() == 1 && x.alternatives[0].size() <= 8 &&
                       static_cast<size_t>(e.min) * x.alternatives[0].size() <= 512;
    for (int32_t i = 0; i < e.min; ++i) {
      if (inline_body) {
        Sequence body = g_.rule(e.rule).alternatives[0];
        for (const auto& b : body) lower_into(b, out);
      } else {
        out.push_back(Element::ref(e.rule));
      }
    }
    if (e.max < 0) {
      out.push_back(Element::ref(star(e.rule)));
    } else if (e.max > e.min) {
      out.push_back(Element::ref(optional_chain(e.rule, e.max - e.min)));
    }
  }

  // star ::= x_1 star | ... | x_k star | ""   (x's empty alternatives dropped: "" * = "")
  int32_t star(int32_t x) {
    if (auto it = stars_.find(x); it != stars_.end()) return it->second;
    int32_t id = g_.add_rule(g_.rule(x).name + "_star");
    stars_[x] = id;
    std::vector<Sequence> alts;
    for (const auto& a : g_.rule(x).alternatives) {
      if (a.empty()) continue;
      Sequence s = a;
      s.push_back(Element::ref(id));
      alts.push_back(std::move(s));
    }
    alts.emplace_back();
    g_.rule(id).alternatives = std::move(alts);
    return id;
  }

  // opt_k ::= x_1 opt_{k-1} | ... | ""  (opt_0 is omitted)
  int32_t optional_chain(int32_t x, int32_t k) {
    auto key = std::make_pair(x, k);
    if (auto it = chains_.find(key); it != chains_.end()) return it->second;
    int32_t prev = -1;
    for (int32_t n = 1; n <= k; ++n) {
      auto nkey = std::make_pair(x, n);
      if (auto it = chains_.find(nkey); it != chains_.end()) {
        prev = it->second;
        continue;
      }
      std::vector<Sequence> alts;
      for (const auto& a : g_.rule(x).alternatives) {
        if (a.empty()) continue;
        Sequence s = a;
        if (prev >= 0) s.push_back(Element::ref(prev));
        alts.push_back(std::move(s));
      }
      alts.emplace_back();
      prev = g_.add_rule(g_.rule(x).name + "_opt", std::move(alts));
      chains_[nkey] = prev;
    }
    return prev;
  }

  Status emit(FlatGrammar& out) {
    out = FlatGrammar{};
    out.root = g_.root();
    for (int32_t id = 0; id < g_.num_rules(); ++id) {
      out.names.push_back(g_.rule(id).name);
      out.starts.emplace_back();
      for (const auto& seq : g_.rule(id).alternatives) {
        out.starts.back().push_back(static_cast<int32_t>(out.items.size()));
        for (const auto& e : seq) {
          if (e.kind == Element::Kind::kBytes) {
            out.items.push_back({FlatGrammar::Op::kBytes, static_cast<int32_t>(out.sets.size())});
            out.sets.push_back(e.bytes);
          } else {
            out.items.push_back({FlatGrammar::Op::kRef, e.rule});
          }
        }
        out.items.push_back({FlatGrammar::Op::kEnd, id});
      }
      if (out.items.size() > kMaxItems) {
        return invalid_argument("grammar too large after expanding repetitions (over {} items)",
                                kMaxItems);
      }
    }
    return check(out);
  }

  static Status check(FlatGrammar& f) {
    const int32_t n = f.num_rules();
    using Op = FlatGrammar::Op;
    // Nullable and productive rules, and first bytes, by fixpoint.
    std::vector<bool> nullable(static_cast<size_t>(n)), productive(static_cast<size_t>(n));
    std::vector<ByteSet> first(static_cast<size_t>(n));
    for (bool changed = true; changed;) {
      changed = false;
      for (int32_t r = 0; r < n; ++r) {
        for (int32_t p : f.starts[static_cast<size_t>(r)]) {
          bool all_nullable = true, all_productive = true;
          ByteSet firsts = first[static_cast<size_t>(r)];
          for (; f.items[static_cast<size_t>(p)].op != Op::kEnd; ++p) {
            const auto& it = f.items[static_cast<size_t>(p)];
            if (it.op == Op::kBytes) {
              if (all_nullable) firsts.add_all(f.sets[static_cast<size_t>(it.arg)]);
              all_nullable = false;
            } else {
              auto c = static_cast<size_t>(it.arg);
              if (all_nullable) firsts.add_all(first[c]);
              all_nullable = all_nullable && nullable[c];
              all_productive = all_productive && productive[c];
            }
          }
          auto ru = static_cast<size_t>(r);
          if (all_nullable && !nullable[ru]) nullable[ru] = changed = true;
          if (all_productive && !productive[ru]) productive[ru] = changed = true;
          if (!(firsts == first[ru])) {
            first[ru] = firsts;
            changed = true;
          }
        }
      }
    }
    // Reachable rules must be productive and free of left recursion.
    std::vector<bool> reachable(static_cast<size_t>(n));
    std::vector<int32_t> stack{f.root};
    reachable[static_cast<size_t>(f.root)] = true;
    while (!stack.empty()) {
      int32_t r = stack.back();
      stack.pop_back();
      for (int32_t p : f.starts[static_cast<size_t>(r)]) {
        for (; f.items[static_cast<size_t>(p)].op != Op::kEnd; ++p) {
          const auto& it = f.items[static_cast<size_t>(p)];
          if (it.op == Op::kRef && !reachable[static_cast<size_t>(it.arg)]) {
            reachable[static_cast<size_t>(it.arg)] = true;
            stack.push_back(it.arg);
          }
        }
      }
    }
    for (int32_t r = 0; r < n; ++r) {
      if (reachable[static_cast<size_t>(r)] && !productive[static_cast<size_t>(r)]) {
        return invalid_argument("rule '{}' can never finish (every alternative recurses forever)",
                                f.names[static_cast<size_t>(r)]);
      }
    }
    // Left calls: r -> c when c is called after only nullable elements. A cycle is left recursion.
    std::vector<std::vector<int32_t>> left(static_cast<size_t>(n));
    for (int32_t r = 0; r < n; ++r) {
      for (int32_t p : f.starts[static_cast<size_t>(r)]) {
        for (; f.items[static_cast<size_t>(p)].op == Op::kRef; ++p) {
          int32_t c = f.items[static_cast<size_t>(p)].arg;
          left[static_cast<size_t>(r)].push_back(c);
          if (!nullable[static_cast<size_t>(c)]) break;
        }
      }
    }
    std::vector<int8_t> color(static_cast<size_t>(n));  // 0 new, 1 on the DFS path, 2 done
    for (int32_t s = 0; s < n; ++s) {
      if (!reachable[static_cast<size_t>(s)] || color[static_cast<size_t>(s)] != 0) continue;
      std::vector<std::pair<int32_t, size_t>> dfs{{s, 0}};
      color[static_cast<size_t>(s)] = 1;
      while (!dfs.empty()) {
        auto& [r, next] = dfs.back();
        const auto& edges = left[static_cast<size_t>(r)];
        if (next == edges.size()) {
          color[static_cast<size_t>(r)] = 2;
          dfs.pop_back();
          continue;
        }
        int32_t c = edges[next++];
        if (color[static_cast<size_t>(c)] == 1) {
          return invalid_argument(
              "rule '{}' is left-recursive (it can call itself before matching any byte; "
              "rewrite it with repetition)",
              f.names[static_cast<size_t>(c)]);
        }
        if (color[static_cast<size_t>(c)] == 0) {
          color[static_cast<size_t>(c)] = 1;
          dfs.emplace_back(c, 0);
        }
      }
    }
    // Follow sets, by fixpoint over every call site.
    f.follow.assign(static_cast<size_t>(n), ByteSet{});
    f.follow_end.assign(static_cast<size_t>(n), false);
    f.follow_end[static_cast<size_t>(f.root)] = true;
    for (bool changed = true; changed;) {
      changed = false;
      for (int32_t r = 0; r < n; ++r) {
        for (int32_t p : f.starts[static_cast<size_t>(r)]) {
          for (; f.items[static_cast<size_t>(p)].op != Op::kEnd; ++p) {
            if (f.items[static_cast<size_t>(p)].op != Op::kRef) continue;
            auto c = static_cast<size_t>(f.items[static_cast<size_t>(p)].arg);
            ByteSet fol = f.follow[c];
            bool rest_nullable = true;
            for (int32_t q = p + 1; rest_nullable && f.items[static_cast<size_t>(q)].op != Op::kEnd;
                 ++q) {
              const auto& it = f.items[static_cast<size_t>(q)];
              if (it.op == Op::kBytes) {
                fol.add_all(f.sets[static_cast<size_t>(it.arg)]);
                rest_nullable = false;
              } else {
                fol.add_all(first[static_cast<size_t>(it.arg)]);
                rest_nullable = nullable[static_cast<size_t>(it.arg)];
              }
            }
            bool end = f.follow_end[c];
            if (rest_nullable) {
              fol.add_all(f.follow[static_cast<size_t>(r)]);
              end = end || f.follow_end[static_cast<size_t>(r)];
            }
            if (!(fol == f.follow[c]) || end != f.follow_end[c]) {
              f.follow[c] = fol;
              f.follow_end[c] = end;
              changed = true;
            }
          }
        }
      }
    }
    return Status::ok();
  }

  Grammar g_;
  std::map<int32_t, int32_t> stars_;
  std::map<std::pair<int32_t, int32_t>, int32_t> chains_;
};

}  // namespace

Status flatten(const Grammar& grammar, FlatGrammar& out) {
  return Lowering(grammar).run(out);
}

}  // namespace llmserve::grammar
