// Phi-4's chat template, implemented directly rather than by a Jinja engine:
//   <|im_start|>{role}<|im_sep|>{content}<|im_end|> for each message, then <|im_start|>assistant<|im_sep|> when a
//   generation prompt is asked for. No separators, no default system prompt.
// The result holds special tokens: encode it with allowSpecial = true. Message contents are copied verbatim, so a
// user who types "<|im_end|>" can inject a turn boundary: callers that must prevent that encode the contents
// separately (allowSpecial = false) and join the ids.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace phx {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// The Jinja source as microsoft/phi-4's tokenizer_config.json holds it (written into the files we generate).
extern const std::string_view kPhi4ChatTemplate;

// Throws phx::Error (invalid argument) naming the message for a role other than system, user or assistant (the
// Jinja template would drop such a message silently; we refuse it).
std::string applyChatTemplate(std::span<const ChatMessage> messages, bool addGenerationPrompt);

}  // namespace phx
