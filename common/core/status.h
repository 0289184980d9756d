// Status helpers on top of absl::Status / absl::StatusOr.
//
// Every recoverable failure in the project (files, parsing, config, RPC, shapes) is an
// absl::Status whose message names the offending item. These macros keep call sites short:
//
//   DS_RETURN_IF_ERROR(LoadThing(path));
//   DS_ASSIGN_OR_RETURN(auto config, ParseConfig(text));
//
// Broken invariants are not Statuses: they crash at once through DS_CHECK (logging.h).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace deepsearch {

// Returns `status` with `context` prepended to its message ("context: message"), keeping the
// code and payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);

// The canonical name of a status code ("INVALID_ARGUMENT").
std::string StatusCodeName(absl::StatusCode code);

namespace status_internal {
// Lets DS_ASSIGN_OR_RETURN name a unique temporary per line.
#define DS_STATUS_CONCAT_INNER(a, b) a##b
#define DS_STATUS_CONCAT(a, b) DS_STATUS_CONCAT_INNER(a, b)
}  // namespace status_internal

}  // namespace deepsearch

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not OK.
#define DS_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status ds_status_ = (expr);      \
    if (!ds_status_.ok()) return ds_status_; \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
// value into `lhs`, which may be a declaration ("auto x") or an existing lvalue.
#define DS_ASSIGN_OR_RETURN(lhs, rexpr) \
  DS_ASSIGN_OR_RETURN_IMPL(DS_STATUS_CONCAT(ds_statusor_, __LINE__), lhs, rexpr)

// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration such as "auto x".
#define DS_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr)     \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)
