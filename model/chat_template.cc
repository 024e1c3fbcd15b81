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

std::string applyChatTemplate(std::span<const ChatMessage> messages, bool addGenerationPrompt) {
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    if (message.role != "system" && message.role != "user" && message.role != "assistant") {
      throwInvalidArgument("chat message " + std::to_string(i) + " has role '" + message.role +
                           "': expected system, user or assistant");
    }
    prompt += "<|im_start|>";
    prompt += message.role;
    prompt += "<|im_sep|>";
    prompt += message.content;
    prompt += "<|im_end|>";
  }
  if (addGenerationPrompt) prompt += "<|im_start|>assistant<|im_sep|>";
  return prompt;
}

}  // namespace phx
