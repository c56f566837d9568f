// Where a key must not be: in place of the name of the variable that holds it, or inside
// an endpoint URL. Both end up in run manifests, ledgers and logs, so they are refused
// before anything is written, and the refusal never prints them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace character::remote {

// An environment variable name as keys are kept in: upper-case letters, digits and '_',
// not starting with a digit (TEACHER_API_KEY). Keys themselves nearly always hold
// lower-case letters or '-', so a key given where its variable's name belongs fails this.
bool is_key_variable_name(std::string_view name);

// What in `url` is a credential ("user:password@", "the query parameter 'api_key'"), or
// nothing. A query parameter counts when its name holds key, token, secret, password,
// auth or sig.
std::optional<std::string> credentials_in_url(std::string_view url);

// `url` for a message: the user information and every query value replaced by "***".
std::string url_for_messages(std::string_view url);

}  // namespace character::remote
