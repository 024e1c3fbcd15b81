#include "model/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"

namespace phx {
namespace {

// Per-thread match state: PCRE2 match data and JIT stack may not be shared by concurrent matches. The JIT stack
// grows on demand to 16 MiB so that long runs of one class (e.g. a million spaces) never exhaust it.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);

  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch kScratch;
  return kScratch;
}

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct Pretokenizer::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Pretokenizer::Pretokenizer(std::string pattern, const std::string& source) : pattern_(std::move(pattern)) {
  auto code = std::make_shared<Code>();
  int error = 0;
  PCRE2_SIZE offset = 0;
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(), PCRE2_UTF | PCRE2_UCP,
                             &error, &offset, nullptr);
  if (!code->code) {
    throwInvalidCheckpoint(source + ": pre-tokenizer pattern does not compile at offset " + std::to_string(offset) +
                           ": " + pcre2Message(error));
  }
  // Without JIT (an unusual PCRE2 build) the interpreter gives the same pieces, only slower.
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  code_ = std::move(code);
}

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  MatchScratch& s = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = code_->jit
                       ? pcre2_jit_match(code_->code, subject, text.size(), pos, 0, s.data, s.context)
                       : pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throwInvalidArgument("pre-tokenizer failed on the input text: " + pcre2Message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
    size_t start = ovector[0];
    size_t end = ovector[1];
    if (end == start) {
      // An empty match (never with cl100k's pattern): step over one character so the loop always advances.
      end = start + 1;
      while (end < text.size() && (uint8_t(text[end]) & 0xC0) == 0x80) ++end;
    }
    if (start > pos) pieces.push_back(text.substr(pos, start - pos));
    pieces.push_back(text.substr(start, end - start));
    pos = end;
  }
  if (pos < text.size()) pieces.push_back(text.substr(pos));
}

}  // namespace phx
