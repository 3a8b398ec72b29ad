// A text tool in AssemblyScript, written with the unmodified `@extism/as-pdk`:
//
//   greet        "World" -> "Hello, World!"; the greeting comes from the config key `greeting`
//   count_words  counts the words of its input, keeps a running total in the var `total`:
//                {"words":N,"total":T}; input without words is the plugin's error
//   stats        {"calls":C,"total":T}: successful `count_words` calls (a module global, i.e.
//                plugin memory) and the total (a var)
//
// Build: npx asc assembly/index.ts --target release (see asconfig.json); `cargo xtask
// build-plugins` does it into target/plugins/as_words.wasm.

import { Config, Host, Memory, Var } from "@extism/as-pdk";
import { error_set, log_error } from "@extism/as-pdk/lib/env";

// Durable state in the plugin's own memory (a mutable global): it persists between calls and
// across canister upgrades, and a call that fails leaves it as it was.
let calls: u32 = 0;

export function greet(): i32 {
  const name = Host.inputString().trim();
  if (name.length == 0) {
    return fail("greet: expected a name as input");
  }
  const greeting = Config.get("greeting");
  output((greeting === null ? "Hello" : greeting) + ", " + name + "!");
  return 0;
}

export function count_words(): i32 {
  // Counted first: if this call fails, the host rolls the count back with everything else.
  calls += 1;
  const words = countWords(Host.inputString());
  if (words == 0) {
    return fail("count_words: the input has no words");
  }
  const total = readTotal() + words;
  Var.set("total", Uint8Array.wrap(String.UTF8.encode(total.toString())));
  output('{"words":' + words.toString() + ',"total":' + total.toString() + "}");
  return 0;
}

export function stats(): i32 {
  output('{"calls":' + calls.toString() + ',"total":' + readTotal().toString() + "}");
  return 0;
}

/** Words are runs of characters other than ASCII whitespace. */
function countWords(text: string): u64 {
  let words: u64 = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c == 0x20 || (c >= 0x09 && c <= 0x0d);
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

function readTotal(): u64 {
  const total = Var.getString("total");
  return total === null ? 0 : U64.parseInt(total);
}

/**
 * Writes `text` as the call's output, UTF-8 encoded. (`Host.outputString` in as-pdk 1.0.0
 * allocates `text.length` bytes, the UTF-16 length, which is too short for non-ASCII text.)
 */
function output(text: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(text)));
}

/** Sets the call's error message (the PDK imports `error_set` but has no wrapper for it). */
function fail(message: string): i32 {
  error_set(Memory.allocateString(message).offset);
  return 1;
}

/**
 * AssemblyScript's `abort` (failed assertions, out-of-bounds access), used instead of the
 * `env.abort` import that an Extism host does not provide (`"use"` in asconfig.json). It logs the
 * reason and sets it as the error message; the compiler traps right after it returns, so the call
 * fails as a trap and the reason is in its logs.
 */
function handleAbort(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  const text =
    "abort: " +
    (message === null ? "" : message) +
    " at " +
    (fileName === null ? "?" : fileName) +
    ":" +
    line.toString() +
    ":" +
    column.toString();
  const memory = Memory.allocateString(text);
  log_error(memory.offset);
  error_set(memory.offset);
}
