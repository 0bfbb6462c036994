/**
 * The CLI's contract, command by command: a missing, malformed or out-of-range flag exits 1 with
 * one `tenslora: …` line naming the flag (or file) and what is valid, and no stack trace; with
 * --debug the stack follows. Each case is the real `tenslora` in a child process; the checks
 * that need no model run before any model is loaded, so the walk stays cheap.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { type CliResult, STACK_LINE, assertUserError, cliAsync } from "./cli-helpers.ts";
import { FIXTURES, VIT, tempDir } from "./make-data.ts";

const dir = tempDir();
const ADAPTER = join(FIXTURES, "vit_lora");

/** [command line, expected message] per case. */
const CASES: [string[], RegExp][] = [
  // train (flags are checked before data or model)
  [["train", "--epochs", "0"], /--epochs must be a positive integer, got 0/],
  [["train", "--epochs", "abc"], /"epochs" must be a number, got "abc"/],
  [["train", "--epochs"], /option '--epochs <n>' argument missing/],
  [["train", "--dropout", "1"], /--dropout must be in \[0, 1\)/],
  [["train", "--threads", "-3"], /--threads must be an integer ≥ 1/],
  [["train", "--lr", "-1"], /--lr must be positive/],
  [["train", "--metric", "bogus"], /unknown metric "bogus"; valid: accuracy/],
  [["train", "--max-length", "0"], /--max-length must be a positive integer/],
  [["train", "--warmup", "2"], /--warmup must be a fraction in \[0, 1\)/],
  [["train", "--config", "/missing.json"], /run config \/missing\.json cannot be read \(ENOENT\); check the path/],
  [["train", "--data", "x"], /--data needs --model/],
  [["train", "--bogus"], /unknown option '--bogus'/],
  [["train", "--epoch", "1"], /unknown option '--epoch' \(Did you mean --epochs\?\)/],
  [["train", "--target-modules", ""], /--target-modules "" names no layer; give names .* or drop the flag/],
  [["train", "--scaling", "1e308"], /--scaling must be in \[-10000, 10000\]/],
  [["params", "--model", "vit-base", "--construction", "lora", "--ranks", "2", "--target-modules", " , "], /names no layer/],
  [["train", "--resume", join(dir, "absent")], /absent\/config\.json cannot be read \(ENOENT\)/],
  // compare
  [["compare", "--seeds", "-1"], /--seeds takes non-negative integers/],
  [["compare", "--batch-size", "0"], /--batch-size must be a positive integer/],
  // infer, eval, merge, analyze
  [["infer", "--images", "x.png"], /required option '--model <dir>'/],
  [["infer", "--model", join(dir, "absent"), "--images", "x.png"], /is not a HuggingFace model folder/],
  [["infer", "--model", VIT], /infer takes exactly one of --inputs/],
  [["infer", "--model", VIT, "--images", "x.png", "--top", "0"], /--top must be a positive integer/],
  [["eval", "--model", VIT, "--adapter", ADAPTER], /eval needs --data/],
  [["merge", "--model", VIT, "--adapter", ADAPTER], /required option '--out <dir>'/],
  [["analyze", "--model", VIT, "--adapter", join(dir, "absent")], /absent/],
  // params, download
  [["params", "--model", "vit-bas"], /neither a preset nor an existing file/],
  [["params", "--model", "vit-base", "--construction", "bogus"], /bogus/],
  [["download", "../escaped"], /not a Hub repository id/],
  [["download", "org/name", "--max-download-size", "lots"], /--max-download-size takes a size in bytes/],
  [["download", "org/name", "--stall-timeout", "0"], /--stall-timeout takes a positive number of seconds/],
  [["download", "org/name", "--min-rate", "fast"], /--min-rate takes a size in bytes/],
  [["download", "org/name", "--deadline", "-1"], /--deadline takes a positive number of minutes/],
  [["nope"], /unknown command 'nope'/],
];

test(`every command: ${CASES.length} missing, malformed and out-of-range flags each give one line, exit 1, no stack`, async () => {
  const results: CliResult[] = [];
  // four at a time: each is a process start and a check, no training
  for (let i = 0; i < CASES.length; i += 4) results.push(...(await Promise.all(CASES.slice(i, i + 4).map(([args]) => cliAsync(args)))));
  CASES.forEach(([args, pattern], i) => {
    const r = results[i];
    assertUserError(r, pattern, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `${args.join(" ")}: one line\n${r.stderr}`);
  });
});

test("--debug adds the stack trace to a user error", async () => {
  const r = await cliAsync(["train", "--epochs", "0", "--debug"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^tenslora: --epochs must be a positive integer/);
  assert.match(r.stderr, STACK_LINE);
});
