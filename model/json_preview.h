// A short, bounded description of a JSON value for error messages. Never json::dump() a value a file or a request
// supplied: dump() recurses, and a value nested a few hundred thousand levels deep overflows the stack.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace phx {

// Scalars as JSON text (strings cut to 60 characters); arrays and objects by type and size, never their contents.
inline std::string jsonPreview(const nlohmann::json& value) {
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + " elements";
  if (value.is_object()) return "an object with " + std::to_string(value.size()) + " fields";
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.size() > 60)
      return nlohmann::json(text.substr(0, 60)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "...";
  }
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace phx
