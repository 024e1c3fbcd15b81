// Drives a running `phalanx serve` with the official `openai` npm client, as an application would: completions and
// chat, whole and streamed, 64 concurrent streams, and an error. Prints one JSON summary line; exits non-zero
// with the reason on the first failed check.
//
// usage: node openai_client.mjs NPM_DIR BASE_URL
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, baseURL] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), "client.cjs"));
const OpenAI = require("openai");
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });

function check(condition, message) {
  if (!condition) {
    console.error(`check failed: ${message}`);
    process.exit(1);
  }
}

async function streamedText(stream, pick) {
  let text = "";
  let usage = null;
  let finish = null;
  let ids = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += pick(choice) ?? "";
      if (choice.finish_reason) finish = choice.finish_reason;
      ids += (choice.token_ids ?? []).length;
    }
  }
  return { text, usage, finish, ids };
}

const summary = {};

// Completions, whole and streamed: greedy gives the same text both ways.
const whole = await client.completions.create({ model: "phi-4", prompt: "Hello there", max_tokens: 8, temperature: 0 });
check(whole.object === "text_completion", `object ${whole.object}`);
check(whole.usage.completion_tokens === 8, `completion_tokens ${whole.usage.completion_tokens}`);
check(whole.choices[0].finish_reason === "length", `finish_reason ${whole.choices[0].finish_reason}`);
const streamed = await streamedText(
  await client.completions.create({ model: "phi-4", prompt: "Hello there", max_tokens: 8, temperature: 0, stream: true,
                                    stream_options: { include_usage: true } }),
  (choice) => choice.text);
check(streamed.text === whole.choices[0].text, `streamed ${JSON.stringify(streamed.text)} vs ${JSON.stringify(whole.choices[0].text)}`);
check(streamed.usage?.completion_tokens === 8, "streamed usage");
summary.completions = whole.choices[0].text;

// Chat, whole and streamed.
const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: "Name a colour." }];
const chat = await client.chat.completions.create({ model: "phi-4", messages, max_tokens: 6, temperature: 0 });
check(chat.object === "chat.completion", `object ${chat.object}`);
check(chat.choices[0].message.role === "assistant", "role");
const chatStream = await streamedText(
  await client.chat.completions.create({ model: "phi-4", messages, max_tokens: 6, temperature: 0, stream: true }),
  (choice) => choice.delta?.content);
check(chatStream.text === chat.choices[0].message.content, "chat streamed text differs from the whole response");
check(chatStream.finish === chat.choices[0].finish_reason, "chat finish_reason");
summary.chat = chat.choices[0].message.content;

// 64 concurrent streaming clients, each asking for 24 tokens.
const wanted = 24;
const results = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
  const stream = await client.completions.create({
    model: "phi-4", prompt: `Client ${i} says`, max_tokens: wanted, ignore_eos: true, temperature: 0.8, seed: i,
    stream: true, stream_options: { include_usage: true }, return_token_ids: true });
  return streamedText(stream, (choice) => choice.text);
}));
results.forEach((r, i) => {
  check(r.ids === wanted, `client ${i} got ${r.ids} token ids`);
  check(r.usage?.completion_tokens === wanted, `client ${i} usage ${JSON.stringify(r.usage)}`);
  check(r.finish === "length", `client ${i} finish ${r.finish}`);
});
summary.concurrentStreams = results.length;

// Errors surface as the client's typed errors.
try {
  await client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 1 });
  check(false, "an unknown model was accepted");
} catch (error) {
  check(error instanceof OpenAI.BadRequestError, `error type ${error?.constructor?.name}`);
  check(error.status === 400, `status ${error.status}`);
  summary.errorMessage = error.error?.message;
}
console.log(JSON.stringify(summary));
