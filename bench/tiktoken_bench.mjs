// The npm tiktoken side of tokenizer_bench: encodes the same text and reports its median rate as one JSON line.
// usage: node tiktoken_bench.mjs NPM_DIR TEXT_FILE REPEATS
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, textPath, repeatsArg] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), "bench.cjs"));
const { get_encoding } = require("tiktoken");

const bytes = readFileSync(textPath);
const text = bytes.toString("utf8");
const encoding = get_encoding("cl100k_base");
let tokens = encoding.encode_ordinary(text).length;  // warm-up
const seconds = [];
for (let i = 0; i < Number(repeatsArg); ++i) {
  const start = process.hrtime.bigint();
  tokens = encoding.encode_ordinary(text).length;
  seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
}
seconds.sort((a, b) => a - b);
const median = seconds[Math.floor(seconds.length / 2)];
encoding.free();
console.log(JSON.stringify({ bytes: bytes.length, tokens, seconds: median, mbPerSecond: bytes.length / median / 1e6 }));
