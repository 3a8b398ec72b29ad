// Hostile JavaScript for the tests: each function misbehaves in one way, and the host must
// answer each with a typed error and keep the plugin (and every other) working.

let calls = 0;

function ok() {
  calls += 1;
  return String(calls);
}

function spin() {
  for (;;) {}
}

function hog() {
  const chunks = [];
  for (;;) chunks.push(new Array(1 << 16).fill(calls));
}

function recurse() {
  return 1 + recurse();
}

function depth(input) {
  const down = (n) => (n === 0 ? 0 : 1 + down(n - 1));
  return String(down(Number(input)));
}

function throwAfterCounting() {
  calls += 1;
  throw new TypeError("thrown on purpose after counting to " + calls);
}

function now() {
  return String(Date.now());
}

function chatty(input) {
  console.log("hello from", input);
  console.warn({ level: "warn" });
  return input;
}

function echoJson(input) {
  return JSON.parse(input);
}
