#include "model/chat_template.h"

#include "common/error.h"

namespace phx {

const std::string_view kPhi4ChatTemplate =
    "{% for message in messages %}"
    "{% if (message['role'] == 'system') %}"
    "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant<|im_sep|>' }}"
    "{% endif %}";

namespace {

void requireKnownRole(const ChatMessage& message, size_t index) {
  if (message.role != "system" && message.role != "user" && message.role != "assistant") {
    throwInvalidArgument("chat message " + std::to_string(index) + " has role '" + message.role +
                         "': expected system, user or assistant");
  }
}

}  // namespace

std::string applyChatTemplate(std::span<const ChatMessage> messages, bool addGenerationPrompt) {
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    requireKnownRole(messages[i], i);
    prompt += "<|im_start|>" + messages[i].role + "<|im_sep|>" + messages[i].content + "<|im_end|>";
  }
  if (addGenerationPrompt) prompt += "<|im_start|>assistant<|im_sep|>";
  return prompt;
}

std::vector<int32_t> chatTemplateIds(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                     const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  const auto append = [&ids](const std::vector<int32_t>& more) { ids.insert(ids.end(), more.begin(), more.end()); };
  for (size_t i = 0; i < messages.size(); ++i) {
    requireKnownRole(messages[i], i);
    append(tokenizer.encode("<|im_start|>" + messages[i].role + "<|im_sep|>", /*allowSpecial=*/true));
    append(tokenizer.encode(messages[i].content, /*allowSpecial=*/false));
    append(tokenizer.encode("<|im_end|>", /*allowSpecial=*/true));
  }
  if (addGenerationPrompt) append(tokenizer.encode("<|im_start|>assistant<|im_sep|>", /*allowSpecial=*/true));
  return ids;
}

}  // namespace phx
