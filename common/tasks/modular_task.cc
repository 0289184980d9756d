// The "modular" task family: a chain of operations modulo m, one intermediate residue per
// step.
//
// Spec: modular:length=6,modulus=17
//   length   operations in the chain, 1..32 (default 6)
//   modulus  m, 2..997 (default 17)
//
// Prompt: "Mod 17, start at 5: *3 +9 -11\n": the start x0 is uniform in [0, m-1]; each
// operation is +k or -k with k in [1, m-1], or *k with k in [2, m-1] (k = 1 when m = 2), the
// three ops equally likely. Answer: the last residue.
// Response: one step per operation, "x op k mod m=r" with r the residue in [0, m-1]:
//   5*3 mod 17=15
//   15+9 mod 17=7
//   7-11 mod 17=13
//   \boxed{13}
//
// The verifier reads the chain from the prompt (1 to 32 operations, m in 2..997) and checks
// every step: it starts from the previous residue (x0 first), applies the chain's next
// operation with the prompt's modulus, and its residue is right. It needs exactly one step
// per operation, and the boxed answer must be the last residue.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/tasks/families.h"
#include "common/tasks/response_format.h"

namespace deepsearch {
namespace {

constexpr int kMaxLength = 32;
constexpr int64_t kMaxModulus = 997;

struct Operation {
  char op = '+';
  int64_t k = 0;
  friend bool operator==(const Operation&, const Operation&) = default;
};

struct Chain {
  int64_t modulus = 2;
  int64_t start = 0;
  std::vector<Operation> ops;
};

int64_t Apply(int64_t x, const Operation& op, int64_t m) {
  switch (op.op) {
    case '+':
      return (x + op.k) % m;
    case '-':
      return ((x - op.k) % m + m) % m;
    default:
      return (x * op.k) % m;
  }
}

std::string OpText(const Operation& op) { return absl::StrCat(std::string(1, op.op), op.k); }

// One written step: "x op k mod m=r".
struct ModStep {
  int64_t x = 0;
  Operation op;
  int64_t modulus = 0;
  int64_t residue = 0;
};

std::optional<ModStep> ParseModStep(std::string_view text) {
  ModStep step;
  const std::optional<int64_t> x = ConsumeNumber(text);
  if (!x || text.empty()) return std::nullopt;
  step.op.op = text[0];
  if (step.op.op != '+' && step.op.op != '-' && step.op.op != '*') return std::nullopt;
  text.remove_prefix(1);
  const std::optional<int64_t> k = ConsumeNumber(text);
  if (!k || !ConsumePrefix(text, " mod ")) return std::nullopt;
  const std::optional<int64_t> m = ConsumeNumber(text);
  if (!m || !ConsumePrefix(text, "=")) return std::nullopt;
  const std::optional<int64_t> r = ParseNumber(text);
  if (!r) return std::nullopt;
  step.x = *x;
  step.op.k = *k;
  step.modulus = *m;
  step.residue = *r;
  return step;
}

class ModularTask final : public TaskFamily {
 public:
  ModularTask(int length, int64_t modulus) : length_(length), modulus_(modulus) {}

  std::string name() const override { return "modular"; }
  std::string spec() const override {
    return absl::StrCat("modular:length=", length_, ",modulus=", modulus_);
  }

  Problem Generate(Rng& rng) const override {
    Chain chain;
    chain.modulus = modulus_;
    chain.start = rng.UniformInt(0, modulus_ - 1);
    for (int i = 0; i < length_; ++i) {
      Operation op;
      op.op = "+-*"[rng.UniformInt(0, 2)];
      const int64_t low = op.op == '*' && modulus_ > 2 ? 2 : 1;
      op.k = rng.UniformInt(low, std::max(low, modulus_ - 1));
      chain.ops.push_back(op);
    }
    std::vector<std::string> ops;
    for (const Operation& op : chain.ops) ops.push_back(OpText(op));
    Problem p;
    p.prompt = absl::StrCat("Mod ", chain.modulus, ", start at ", chain.start, ": ",
                            absl::StrJoin(ops, " "), "\n");
    p.answer = absl::StrCat(Residues(chain).back());
    p.task = spec();
    p.id = StableProblemId(p.prompt, p.answer);
    return p;
  }

  std::optional<std::string> Solve(const Problem& problem) const override {
    const absl::StatusOr<Chain> chain = ParseProblem(problem);
    if (!chain.ok()) return std::nullopt;
    const std::vector<int64_t> residues = Residues(*chain);
    std::vector<std::string> lines;
    for (size_t i = 0; i < chain->ops.size(); ++i) {
      lines.push_back(absl::StrCat(residues[i], OpText(chain->ops[i]), " mod ", chain->modulus, "=",
                                   residues[i + 1]));
    }
    return RenderStepResponse(lines, problem.answer);
  }

  Verdict Verify(const Problem& problem, std::string_view response) const override {
    const absl::StatusOr<Chain> chain = ParseProblem(problem);
    if (!chain.ok()) {
      return RejectResponse(problem, response, std::string(chain.status().message()));
    }
    const absl::StatusOr<StepResponse> parsed = ParseStepResponse(response);
    if (!parsed.ok()) {
      return RejectResponse(problem, response, std::string(parsed.status().message()));
    }
    const std::string predicted(parsed->answer);
    auto fail = [&](std::string reason) {
      return Verdict::Incorrect(predicted, problem.answer, std::move(reason));
    };
    const std::vector<int64_t> residues = Residues(*chain);
    const size_t n = chain->ops.size();
    for (size_t i = 0; i < parsed->steps.size(); ++i) {
      const std::string where = absl::StrCat("step ", i + 1, ": ");
      const std::string_view text = parsed->steps[i];
      if (i >= n) return fail(absl::StrCat(where, "extra step (the chain has ", n, " operations)"));
      const std::optional<ModStep> step = ParseModStep(text);
      if (!step) {
        return fail(absl::StrCat(where, "malformed '", std::string(text),
                                 "' (expected x*k mod m=r with one of + - *)"));
      }
      if (step->x != residues[i]) {
        return fail(
            absl::StrCat(where, "starts from ", step->x, ", but the value is ", residues[i]));
      }
      if (!(step->op == chain->ops[i])) {
        return fail(absl::StrCat(where, "the operation is ", OpText(chain->ops[i]), ", not ",
                                 OpText(step->op)));
      }
      if (step->modulus != chain->modulus) {
        return fail(
            absl::StrCat(where, "the modulus is ", chain->modulus, ", not ", step->modulus));
      }
      if (step->residue != residues[i + 1]) {
        return fail(absl::StrCat(where, residues[i], OpText(step->op), " mod ", chain->modulus,
                                 " is ", residues[i + 1], ", not ", step->residue));
      }
    }
    if (parsed->steps.size() < n) {
      return fail(absl::StrCat("only ", parsed->steps.size(), " steps for ", n, " operations"));
    }
    if (predicted != problem.answer) {
      return fail(absl::StrCat("boxed answer ", predicted, ", final value ", problem.answer));
    }
    return Verdict::Correct(predicted, problem.answer);
  }

 private:
  // x0, x1, ..., xL.
  static std::vector<int64_t> Residues(const Chain& chain) {
    std::vector<int64_t> out = {chain.start};
    for (const Operation& op : chain.ops) out.push_back(Apply(out.back(), op, chain.modulus));
    return out;
  }

  // The chain of "Mod 17, start at 5: *3 +9 -11\n", checked against the answer.
  absl::StatusOr<Chain> ParseProblem(const Problem& problem) const {
    auto malformed = [] {
      return absl::InvalidArgumentError(
          "problem: the prompt is not of the form 'Mod 17, start at 5: *3 +9 -11\\n'");
    };
    std::string_view text = problem.prompt;
    Chain chain;
    if (!ConsumePrefix(text, "Mod ")) return malformed();
    const std::optional<int64_t> m = ConsumeNumber(text);
    if (!m || !ConsumePrefix(text, ", start at ")) return malformed();
    const std::optional<int64_t> start = ConsumeNumber(text);
    if (!start || !ConsumePrefix(text, ": ")) return malformed();
    chain.modulus = *m;
    chain.start = *start;
    while (true) {
      if (text.empty()) return malformed();
      Operation op;
      op.op = text[0];
      if (op.op != '+' && op.op != '-' && op.op != '*') return malformed();
      text.remove_prefix(1);
      const std::optional<int64_t> k = ConsumeNumber(text);
      if (!k) return malformed();
      op.k = *k;
      chain.ops.push_back(op);
      if (text == "\n") break;
      if (!ConsumePrefix(text, " ")) return malformed();
    }
    if (chain.modulus < 2 || chain.modulus > kMaxModulus || chain.start >= chain.modulus ||
        chain.ops.size() > kMaxLength) {
      return absl::InvalidArgumentError(absl::StrCat("problem: unsupported chain (modulus 2..",
                                                     kMaxModulus, ", start below the modulus, 1..",
                                                     kMaxLength, " operations)"));
    }
    for (const Operation& op : chain.ops) {
      if (op.k >= chain.modulus) {
        return absl::InvalidArgumentError(
            absl::StrCat("problem: operand ", op.k, " is not below the modulus"));
      }
    }
    const std::string answer = absl::StrCat(Residues(chain).back());
    if (problem.answer != answer) {
      return absl::InvalidArgumentError(absl::StrCat("problem: the answer '", problem.answer,
                                                     "' is not the chain's value ", answer));
    }
    return chain;
  }

  const int length_;
  const int64_t modulus_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeModularTask(TaskOptions& options) {
  const absl::StatusOr<int64_t> length = options.Int("length", 6, 1, kMaxLength);
  if (!length.ok()) return length.status();
  const absl::StatusOr<int64_t> modulus = options.Int("modulus", 17, 2, kMaxModulus);
  if (!modulus.ok()) return modulus.status();
  return std::unique_ptr<TaskFamily>(new ModularTask(static_cast<int>(*length), *modulus));
}

}  // namespace deepsearch
