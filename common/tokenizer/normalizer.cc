#include "common/tokenizer/normalizer.h"

#include <cstdlib>

#include <utf8proc.h>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"

namespace deepsearch {
namespace {

absl::StatusOr<Normalization> ParseOne(const nlohmann::json& normalizer, std::string_view key,
                                       const JsonFields& fields) {
  absl::StatusOr<std::string> type = fields.Type(normalizer, key);
  if (!type.ok()) return type.status();
  if (*type == "NFC") return Normalization::kNfc;
  if (*type == "Sequence") {
    const std::string list_key = JsonFields::Path(key, "normalizers");
    absl::StatusOr<const nlohmann::json*> list = fields.Required(normalizer, key, "normalizers");
    if (!list.ok()) return list.status();
    if (!(*list)->is_array()) {
      return fields.Error(list_key, absl::StrCat("expected an array, got ", DescribeJson(**list)));
    }
    Normalization result = Normalization::kNone;
    for (size_t i = 0; i < (*list)->size(); ++i) {
      absl::StatusOr<Normalization> one =
          ParseOne((**list)[i], JsonFields::Index(list_key, i), fields);
      if (!one.ok()) return one.status();
      if (*one == Normalization::kNfc) result = Normalization::kNfc;  // NFC twice is NFC
    }
    return result;
  }
  return fields.Error(JsonFields::Path(key, "type"),
                      absl::StrCat("normalizer '", *type,
                                   "' is not supported (supported: NFC, a Sequence of NFC, null)"));
}

}  // namespace

absl::StatusOr<Normalization> ParseNormalizer(const nlohmann::json& root,
                                              const JsonFields& fields) {
  const nlohmann::json* normalizer = JsonFields::Optional(root, "normalizer");
  if (normalizer == nullptr) return Normalization::kNone;
  return ParseOne(*normalizer, "normalizer", fields);
}

std::string NormalizeNfc(std::string_view text) {
  // Every code point below U+0300 is NFC-stable, and nothing composes with it unless a
  // combining mark or a conjoining jamo (all at or above U+0300) follows. Their UTF-8 lead
  // bytes are 0xCC and above, which no other byte reaches.
  bool may_change = false;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0xCC) {
      may_change = true;
      break;
    }
  }
  if (!may_change) return std::string(text);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  // utf8proc fails only on invalid UTF-8 (callers validate first) or out of memory.
  DS_CHECK(n >= 0) << "utf8proc_map: " << utf8proc_errmsg(n);
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string Normalize(Normalization normalization, std::string_view text) {
  if (normalization == Normalization::kNfc) return NormalizeNfc(text);
  return std::string(text);
}

}  // namespace deepsearch
