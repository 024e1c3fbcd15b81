// The independent reference for tokenizer_oracle_test: the npm `tiktoken` package (tiktoken's Rust core compiled
// to WebAssembly) with cl100k_base extended by Phi-4's added tokens.
//
// usage: node tiktoken_oracle.mjs NPM_DIR ADDED_TOKENS.json IN.bin OUT.bin
//   ADDED_TOKENS.json: {"<|im_start|>": 100264, ...}
//   IN.bin:  per string: u32 byte length, the bytes (any bytes: not necessarily UTF-8)
//   OUT.bin: per string: u32 length + the UTF-8 of TextDecoder's decoding (ill-formed bytes -> U+FFFD),
//            u32 count + u32 ids encoding it as plain text, u32 count + u32 ids with every added token allowed.
// All integers little-endian. One run handles the whole corpus.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, addedPath, inPath, outPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), "oracle.cjs"));
const { get_encoding } = require("tiktoken");

const added = JSON.parse(readFileSync(addedPath, "utf8"));
const encoding = get_encoding("cl100k_base", added);
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const encoder = new TextEncoder();

const input = readFileSync(inPath);
const chunks = [];
const u32 = (value) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
};
const ids = (array) => Buffer.concat([u32(array.length), Buffer.from(new Uint32Array(array).buffer)]);

for (let pos = 0; pos < input.length;) {
  const length = input.readUInt32LE(pos);
  const text = decoder.decode(input.subarray(pos + 4, pos + 4 + length));
  pos += 4 + length;
  const utf8 = encoder.encode(text);
  chunks.push(u32(utf8.length), Buffer.from(utf8));
  chunks.push(ids(encoding.encode(text, [], [])));
  chunks.push(ids(encoding.encode(text, "all")));
}
encoding.free();
writeFileSync(outPath, Buffer.concat(chunks));
