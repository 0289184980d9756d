// deepsearch tokenize --tokenizer FILE [--decode] [--json] [--allow-special] [--skip-special]:
// encode stdin lines (or, with --json, JSON strings one per line, for texts with line breaks)
// to JSON arrays of token ids, or decode JSON arrays back to text.
//
// One output line per input line, in order. A line that fails (text that is not UTF-8, a
// line that is not a JSON array of integers, an id the tokenizer does not have) prints
// `null`, its error goes to stderr with the line number, the remaining lines are still
// processed, and the exit code is 1.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

#include "cli/commands.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch::cli {
namespace {

struct TokenizeArgs {
  std::string tokenizer;
  bool decode = false;
  bool json = false;
  bool allow_special = false;
  bool skip_special = false;
};

// The ids of one JSON line, each checked against the tokenizer.
absl::StatusOr<std::vector<TokenId>> ParseIds(const std::string& line, const Tokenizer& tokenizer) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
  if (!j.is_array()) return absl::InvalidArgumentError("expected a JSON array of token ids");
  std::vector<TokenId> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& v = j[i];
    if (!v.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, " is not an integer: ", v.dump()));
    }
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= tokenizer.vocab_size() ||
        tokenizer.IdToToken(static_cast<TokenId>(id)).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("element ", i, ": id ", id,
                                                     " is not in the vocabulary (ids 0 to ",
                                                     tokenizer.vocab_size() - 1, ")"));
    }
    ids.push_back(static_cast<TokenId>(id));
  }
  return ids;
}

// The text of a --json line: one JSON string.
absl::StatusOr<std::string> ParseText(const std::string& line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.is_string()) return absl::InvalidArgumentError("expected a JSON string");
    return j.get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON string: ", e.what()));
  }
}

int Run(const TokenizeArgs& args) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(args.tokenizer);
  if (!tokenizer.ok()) {
    std::cerr << tokenizer.status().message() << "\n";
    return kExitFailure;
  }
  int failures = 0;
  int64_t number = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++number;
    absl::StatusOr<std::string> out;
    if (args.decode) {
      absl::StatusOr<std::vector<TokenId>> ids = ParseIds(line, **tokenizer);
      if (ids.ok()) {
        out = nlohmann::json((*tokenizer)->Decode(*ids, args.skip_special)).dump();
      } else {
        out = ids.status();
      }
    } else {
      absl::StatusOr<std::string> text = args.json ? ParseText(line) : line;
      absl::StatusOr<std::vector<TokenId>> ids =
          text.ok() ? (*tokenizer)->Encode(*text, args.allow_special) : text.status();
      if (ids.ok()) {
        out = nlohmann::json(*ids).dump();
      } else {
        out = ids.status();
      }
    }
    if (out.ok()) {
      std::cout << *out << "\n";
    } else {
      std::cout << "null\n";
      std::cerr << "line " << number << ": " << out.status().message() << "\n";
      ++failures;
    }
  }
  std::cout.flush();
  if (failures > 0) {
    std::cerr << failures << " of " << number << " lines failed\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* tokenize = app.add_subcommand(
      "tokenize",
      "Encode stdin lines to JSON arrays of token ids (one per line), or decode them back");
  tokenize->add_option("--tokenizer", args->tokenizer, "A Hugging Face tokenizer.json")->required();
  tokenize->add_flag("--decode", args->decode,
                     "Read JSON arrays of ids, write JSON strings (default: encode text)");
  tokenize->add_flag("--json", args->json,
                     "Encode: each line is a JSON string (texts with line breaks)");
  tokenize->add_flag("--allow-special", args->allow_special,
                     "Encode: recognise special tokens such as <|im_end|> in the text");
  tokenize->add_flag("--skip-special", args->skip_special, "Decode: leave special tokens out");
  tokenize->callback([args, &exit_code] { exit_code = Run(*args); });
}

}  // namespace deepsearch::cli
