#include "common/tasks/word_problems.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/tasks/response_format.h"

namespace deepsearch {
namespace {

// What a sentence does to the running quantity v, with its numbers x0, x1 in the order
// written.
enum class Kind {
  kSet,     // v = x0                (opening only; no statement)
  kSetMul,  // v = x0*x1             (opening only)
  kAdd,     // v = v+x0
  kSub,     // v = v-x0
  kAddMul,  // v = v+x0*x1           (two statements)
  kSubMul,  // v = v-x0*x1           (two statements)
  kMul,     // v = v*x0
  kDiv,     // v = v/x0              (keep one of x0 equal parts)
};

int Cost(Kind kind) {
  switch (kind) {
    case Kind::kSet:
      return 0;
    case Kind::kAddMul:
    case Kind::kSubMul:
      return 2;
    default:
      return 1;
  }
}

// A sentence pattern: '#' stands for a number. In two-number patterns the first number is
// the count (boxes, hours, ...), the second the size.
struct Pattern {
  Kind kind;
  std::string_view text;
};

struct Scenario {
  std::string_view name;
  std::vector<Pattern> openings;
  std::vector<Pattern> events;  // each scenario has a kAdd and a kSub event
  std::string_view question;
};

// The scenarios (a table: data, not logic). Made once, never destroyed.
const std::vector<Scenario>* const kScenarios = new std::vector<Scenario>{
    {"shop",
     {{Kind::kSet, "A shop has # apples."}, {Kind::kSetMul, "A shop has # boxes of # apples."}},
     {{Kind::kAdd, "It gets # more apples."},
      {Kind::kSub, "It sells # apples."},
      {Kind::kAddMul, "It buys # crates of # apples."},
      {Kind::kSubMul, "It sells # bags of # apples."},
      {Kind::kDiv, "It splits the apples into # equal piles and keeps one pile."}},
     "How many apples does the shop have now?"},
    {"train",
     {{Kind::kSet, "A train goes # km."},
      {Kind::kSetMul, "A train runs # hours at # km per hour."}},
     {{Kind::kAdd, "Then it goes # km further."},
      {Kind::kSub, "Then it goes back # km."},
      {Kind::kAddMul, "Then it runs # hours at # km per hour."},
      {Kind::kSubMul, "Then it goes back for # hours at # km per hour."}},
     "How many km from the start is the train now?"},
    {"money",
     {{Kind::kSet, "Tom has # dollars."}, {Kind::kSetMul, "Tom works # days for # dollars a day."}},
     {{Kind::kAdd, "He earns # dollars."},
      {Kind::kSub, "He spends # dollars."},
      {Kind::kAddMul, "He sells # books at # dollars each."},
      {Kind::kSubMul, "He buys # pens at # dollars each."},
      {Kind::kDiv, "He splits his money into # equal parts and keeps one part."}},
     "How many dollars does Tom have now?"},
    {"library",
     {{Kind::kSet, "A library has # books."},
      {Kind::kSetMul, "A library has # shelves of # books."}},
     {{Kind::kAdd, "It receives # new books."},
      {Kind::kSub, "# books are lent out."},
      {Kind::kAddMul, "It receives # boxes of # books."},
      {Kind::kSubMul, "It gives away # sets of # books."}},
     "How many books are in the library now?"},
    {"bus",
     {{Kind::kSet, "A bus has # people on board."}},
     {{Kind::kAdd, "At a stop # people get on."},
      {Kind::kSub, "At a stop # people get off."},
      {Kind::kAddMul, "# groups of # people get on."},
      {Kind::kSubMul, "# families of # people get off."}},
     "How many people are on the bus now?"},
    {"garden",
     {{Kind::kSet, "A garden has # flowers."},
      {Kind::kSetMul, "A garden has # rows of # flowers."}},
     {{Kind::kAdd, "# more flowers are planted."},
      {Kind::kSub, "# flowers are picked."},
      {Kind::kAddMul, "# new rows of # flowers are planted."},
      {Kind::kMul, "The number of flowers grows # times."}},
     "How many flowers are in the garden now?"},
    {"cookies",
     {{Kind::kSet, "Sam has # cookies."}, {Kind::kSetMul, "Sam bakes # trays of # cookies."}},
     {{Kind::kAdd, "He bakes # more cookies."},
      {Kind::kSub, "He eats # cookies."},
      {Kind::kAddMul, "He bakes # more trays of # cookies."},
      {Kind::kSubMul, "He gives # friends # cookies each."},
      {Kind::kDiv, "He packs the cookies into # equal bags and keeps one bag."}},
     "How many cookies does Sam have now?"},
    {"tank",
     {{Kind::kSet, "A tank holds # liters of water."},
      {Kind::kSetMul, "A pump runs # minutes at # liters a minute into an empty tank."}},
     {{Kind::kAdd, "# liters are added."},
      {Kind::kSub, "# liters are used."},
      {Kind::kAddMul, "A pump runs # minutes at # liters a minute."},
      {Kind::kSubMul, "A leak runs # hours at # liters an hour."}},
     "How many liters are in the tank now?"},
    {"savings",
     {{Kind::kSet, "Mia has # dollars saved."},
      {Kind::kSetMul, "Mia saves for # weeks at # dollars a week."}},
     {{Kind::kAdd, "She gets # dollars as a gift."},
      {Kind::kSub, "She spends # dollars on a game."},
      {Kind::kAddMul, "She saves for # more weeks at # dollars a week."},
      {Kind::kMul, "Her savings grow # times."}},
     "How many dollars does Mia have now?"},
    {"cards",
     {{Kind::kSet, "Leo has # cards."}, {Kind::kSetMul, "Leo has # packs of # cards."}},
     {{Kind::kAdd, "He finds # cards."},
      {Kind::kSub, "He trades away # cards."},
      {Kind::kAddMul, "He buys # packs of # cards."},
      {Kind::kSubMul, "He gives # friends # cards each."},
      {Kind::kDiv, "He deals his cards into # equal stacks and keeps one stack."}},
     "How many cards does Leo have now?"},
    {"farm",
     {{Kind::kSet, "A farm has # eggs."}, {Kind::kSetMul, "On a farm # hens lay # eggs each."}},
     {{Kind::kAdd, "The hens lay # more eggs."},
      {Kind::kSub, "# eggs are sold."},
      {Kind::kSubMul, "# cartons of # eggs are sold."},
      {Kind::kDiv, "The eggs are split into # equal baskets and one basket is kept."}},
     "How many eggs does the farm have now?"},
    {"school",
     {{Kind::kSet, "A school has # students."},
      {Kind::kSetMul, "A school has # classes of # students."}},
     {{Kind::kAdd, "# students join."},
      {Kind::kSub, "# students leave."},
      {Kind::kAddMul, "# new classes of # students join."},
      {Kind::kDiv, "The students split into # equal teams and one team stays."}},
     "How many students are at the school now?"},
    {"reading",
     {{Kind::kSet, "Ana has # pages left to read."}},
     {{Kind::kAdd, "A new chapter adds # pages."},
      {Kind::kSub, "Ana reads # pages."},
      {Kind::kSubMul, "Ana reads for # days at # pages a day."}},
     "How many pages are left to read?"},
    {"parking",
     {{Kind::kSet, "A parking lot has # cars."},
      {Kind::kSetMul, "A parking lot has # rows of # cars."}},
     {{Kind::kAdd, "# cars arrive."},
      {Kind::kSub, "# cars leave."},
      {Kind::kAddMul, "# trucks bring # cars each."},
      {Kind::kSubMul, "# rows of # cars leave."}},
     "How many cars are in the lot now?"},
};

const std::vector<Scenario>& Scenarios() { return *kScenarios; }

constexpr int64_t kMaxCount = 12;
constexpr int64_t kCapFactor = 20;

// Numbers for a `kind` sentence applied to v, or nullopt when none keep the rules (no
// negatives, exact shares, nothing above `cap`).
std::optional<std::vector<int64_t>> Draw(Kind kind, int64_t v, int64_t max, int64_t cap, Rng& rng) {
  const int64_t count_max = std::min(kMaxCount, max);
  switch (kind) {
    case Kind::kSet:
      return std::vector<int64_t>{rng.UniformInt(1, max)};
    case Kind::kSetMul: {
      const int64_t x0 = rng.UniformInt(2, count_max);
      return std::vector<int64_t>{x0, rng.UniformInt(1, max)};
    }
    case Kind::kAdd:
      if (cap - v < 1) return std::nullopt;
      return std::vector<int64_t>{rng.UniformInt(1, std::min(max, cap - v))};
    case Kind::kSub:
      if (v < 1) return std::nullopt;
      return std::vector<int64_t>{rng.UniformInt(1, std::min(max, v))};
    case Kind::kAddMul: {
      const int64_t room = cap - v;
      if (std::min(count_max, room) < 2) return std::nullopt;
      const int64_t x0 = rng.UniformInt(2, std::min(count_max, room));
      return std::vector<int64_t>{x0, rng.UniformInt(1, std::min(max, room / x0))};
    }
    case Kind::kSubMul: {
      if (std::min(count_max, v) < 2) return std::nullopt;
      const int64_t x0 = rng.UniformInt(2, std::min(count_max, v));
      return std::vector<int64_t>{x0, rng.UniformInt(1, std::min(max, v / x0))};
    }
    case Kind::kMul: {
      if (v < 1 || std::min(count_max, cap / v) < 2) return std::nullopt;
      return std::vector<int64_t>{rng.UniformInt(2, std::min(count_max, cap / v))};
    }
    case Kind::kDiv: {
      std::vector<int64_t> divisors;
      for (int64_t d = 2; d <= count_max && v > 0; ++d) {
        if (v % d == 0) divisors.push_back(d);
      }
      if (divisors.empty()) return std::nullopt;
      return std::vector<int64_t>{
          divisors[rng.UniformInt(0, static_cast<int64_t>(divisors.size()) - 1)]};
    }
  }
  return std::nullopt;
}

// Appends the statements of a `kind` sentence with numbers `x` to `steps` and returns the new
// value; nullopt when a statement is not allowed.
std::optional<int64_t> Apply(Kind kind, int64_t v, const std::vector<int64_t>& x,
                             std::vector<ArithmeticStep>& steps) {
  auto statement = [&steps](int64_t a, char op, int64_t b) -> std::optional<int64_t> {
    const std::optional<int64_t> r = ApplyArithmeticOp(a, op, b);
    if (r) steps.push_back({a, op, b, *r});
    return r;
  };
  switch (kind) {
    case Kind::kSet:
      return x[0];
    case Kind::kSetMul:
      return statement(x[0], '*', x[1]);
    case Kind::kAdd:
      return statement(v, '+', x[0]);
    case Kind::kSub:
      return statement(v, '-', x[0]);
    case Kind::kAddMul: {
      const std::optional<int64_t> p = statement(x[0], '*', x[1]);
      if (!p) return std::nullopt;
      return statement(v, '+', *p);
    }
    case Kind::kSubMul: {
      const std::optional<int64_t> p = statement(x[0], '*', x[1]);
      if (!p) return std::nullopt;
      return statement(v, '-', *p);
    }
    case Kind::kMul:
      return statement(v, '*', x[0]);
    case Kind::kDiv:
      return statement(v, '/', x[0]);
  }
  return std::nullopt;
}

std::string Render(std::string_view pattern, const std::vector<int64_t>& x) {
  std::string out;
  size_t next = 0;
  for (const char c : pattern) {
    if (c == '#') {
      absl::StrAppend(&out, x[next++]);
    } else {
      out += c;
    }
  }
  return out;
}

// Matches `pattern` at the front of `text`; on success advances `text` and returns the
// numbers.
std::optional<std::vector<int64_t>> Match(std::string_view pattern, std::string_view& text) {
  std::string_view rest = text;
  std::vector<int64_t> x;
  for (const char c : pattern) {
    if (c == '#') {
      const std::optional<int64_t> number = ConsumeNumber(rest);
      if (!number) return std::nullopt;
      x.push_back(*number);
    } else {
      if (rest.empty() || rest[0] != c) return std::nullopt;
      rest.remove_prefix(1);
    }
  }
  text = rest;
  return x;
}

// The prompt read as `opening`, then events of `scenario`, then its question, and solved;
// nullopt when it does not match.
std::optional<WordProblem> SolveAs(const Scenario& scenario, const Pattern& opening,
                                   std::string_view prompt) {
  const std::string ending = absl::StrCat(" ", std::string(scenario.question), "\n");
  std::string_view text = prompt;
  std::optional<std::vector<int64_t>> x = Match(opening.text, text);
  if (!x) return std::nullopt;
  WordProblem out;
  std::optional<int64_t> v = Apply(opening.kind, 0, *x, out.steps);
  while (v && text != ending) {
    if (!ConsumePrefix(text, " ")) return std::nullopt;
    const Pattern* matched = nullptr;
    for (const Pattern& event : scenario.events) {
      if ((x = Match(event.text, text))) {
        matched = &event;
        break;
      }
    }
    if (matched == nullptr) return std::nullopt;
    v = Apply(matched->kind, *v, *x, out.steps);
  }
  if (!v || out.steps.empty()) return std::nullopt;
  out.scenario = std::string(scenario.name);
  out.prompt = std::string(prompt);
  out.answer = *v;
  return out;
}

}  // namespace

int WordScenarioCount() { return static_cast<int>(Scenarios().size()); }

std::string_view WordScenarioName(int scenario) { return Scenarios().at(scenario).name; }

WordProblem GenerateWordProblem(int scenario_index, int ops, int64_t max, Rng& rng) {
  DS_CHECK(ops >= 1 && max >= 2) << "ops " << ops << ", max " << max;
  const Scenario& scenario = Scenarios().at(scenario_index);
  const int64_t cap = kCapFactor * max;
  WordProblem out;
  out.scenario = std::string(scenario.name);
  std::vector<std::string> sentences;
  // The opening: a plain number, or a product when that fits the budget.
  std::vector<const Pattern*> openings;
  for (const Pattern& p : scenario.openings) openings.push_back(&p);
  const Pattern& opening = *openings[rng.UniformInt(0, static_cast<int64_t>(openings.size()) - 1)];
  const std::vector<int64_t> x0 = *Draw(opening.kind, 0, max, cap, rng);
  int64_t v = *Apply(opening.kind, 0, x0, out.steps);
  sentences.push_back(Render(opening.text, x0));
  int remaining = ops - Cost(opening.kind);
  // Events, in random order of preference, until the budget is spent. Some kAdd or kSub
  // event always fits (v < cap or v >= 1), so this ends.
  while (remaining > 0) {
    std::vector<const Pattern*> order;
    for (const Pattern& p : scenario.events) order.push_back(&p);
    for (size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[rng.UniformInt(0, static_cast<int64_t>(i))]);
    }
    bool applied = false;
    for (const Pattern* event : order) {
      if (Cost(event->kind) > remaining) continue;
      const std::optional<std::vector<int64_t>> x = Draw(event->kind, v, max, cap, rng);
      if (!x) continue;
      v = *Apply(event->kind, v, *x, out.steps);
      sentences.push_back(Render(event->text, *x));
      remaining -= Cost(event->kind);
      applied = true;
      break;
    }
    DS_CHECK(applied) << "scenario " << scenario.name << " has no event for v=" << v;
  }
  for (const std::string& s : sentences) absl::StrAppend(&out.prompt, s, " ");
  absl::StrAppend(&out.prompt, std::string(scenario.question), "\n");
  out.answer = v;
  return out;
}

std::optional<WordProblem> SolveWordPrompt(std::string_view prompt) {
  for (const Scenario& scenario : Scenarios()) {
    for (const Pattern& opening : scenario.openings) {
      if (std::optional<WordProblem> solved = SolveAs(scenario, opening, prompt)) return solved;
    }
  }
  return std::nullopt;
}

}  // namespace deepsearch
