// Phi-4's chat template, implemented directly rather than by a Jinja engine:
//   <|im_start|>{role}<|im_sep|>{content}<|im_end|> for each message, then <|im_start|>assistant<|im_sep|> when a
//   generation prompt is asked for. No separators, no default system prompt.
// Prompts are built as ids (chatTemplateIds): the turn markers as special tokens, each content encoded as plain
// text, so a user who types "<|im_end|>" gets those characters, not a turn boundary. The text form
// (applyChatTemplate) is what the Jinja template renders, for display and as the tests' reference.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

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

// The prompt every Phalanx path sends (the server's chat completions, `generate --chat`). Refuses roles as
// applyChatTemplate does.
std::vector<int32_t> chatTemplateIds(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                     const Tokenizer& tokenizer);

}  // namespace phx
