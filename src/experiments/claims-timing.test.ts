/** timing.jsonl: the sum of every appended line, whoever appended it, a torn last line skipped. */
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { appendFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { appendTiming, readTiming } from "./claims-timing.ts";

test("timing lines from several processes appending at once all count, and a torn line is skipped", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "claims-timing-")), "timing.jsonl");
  assert.deepEqual(readTiming(path), { wallSeconds: 0, cpuSeconds: 0, runs: 0 }, "no file: nothing run");
  // a folder carried over from before: one line summing many runs
  appendTiming(path, { wallSeconds: 100, cpuSeconds: 40, runs: 10 });
  // three processes, as three `compare --claims --claims-tasks …` on one folder, 200 runs each
  const writer = `import { appendTiming } from ${JSON.stringify(new URL("./claims-timing.ts", import.meta.url).href)};
for (let i = 0; i < 200; i++) appendTiming(process.argv[2], { wallSeconds: 0.5, cpuSeconds: 0.25, runs: 1 });`;
  const script = join(path, "..", "writer.ts");
  appendFileSync(script, writer);
  await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<void>((done, fail) =>
          fork(script, [path], { execArgv: ["--import", "tsx"] }).on("exit", (code) => (code === 0 ? done() : fail(new Error(`writer exited ${code}`)))),
        ),
    ),
  );
  // a process killed mid-write leaves part of a line
  appendFileSync(path, '{"wallSeconds":3,"cpu');
  assert.deepEqual(readTiming(path), { wallSeconds: 100 + 600 * 0.5, cpuSeconds: 40 + 600 * 0.25, runs: 610 });
});
