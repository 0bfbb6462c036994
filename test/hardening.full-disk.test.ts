/**
 * A full disk (the kernel's ENOSPC on a small tmpfs, tiny-disk.ts) while writing: the CLI's one
 * line names the file it was writing, and every writer of the library — plots, atomic files,
 * GGUF, the metrics log, locks, the ONNX weight store — puts that path on its error, where
 * write(2), which takes a descriptor, leaves it off. No temporary file stays behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { FIXTURES, tempDir } from "./helpers.ts";
import { onTinyDisk, tinyDiskUnavailable } from "./tiny-disk.ts";

const skip = tinyDiskUnavailable();

test("tenslora analyze onto a full disk: one line naming the plot file and exit 1", { skip }, () => {
  const { dir, cleanup } = tempDir("full-disk-cli");
  try {
    // 8 KiB: the model's JSON report fits, the plot's SVG does not
    const r = onTinyDisk(dir, "8k", [
      process.execPath,
      "bin/tenslora.js",
      "analyze",
      "--adapter",
      join(FIXTURES, "vit_lora"),
      "--model",
      join(FIXTURES, "vit"),
      "--out",
      join(dir, "spectrum"),
    ]);
    assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^tenslora: write ${join(dir, "spectrum")}\\.(svg|png) failed \\(ENOSPC\\): no space left`));
  } finally {
    cleanup();
  }
});

test("every writer names its file when the disk is full", { skip }, () => {
  const { dir, cleanup } = tempDir("full-disk-writers");
  const root = resolve(".");
  const script = `
    import { writeFileSync } from "node:fs";
    import { describeSystemError } from "${root}/cli/errors.ts";
    import { writeFileAtomic } from "${root}/src/io/atomic-file.ts";
    import { writeGguf } from "${root}/src/io/gguf-writer.ts";
    import { acquireLock } from "${root}/src/io/lock.ts";
    import { WeightStore } from "${root}/src/onnx/weight-store.ts";
    import { writeCurvePlot } from "${root}/src/train/curve-plot.ts";
    import { writePlot } from "${root}/src/train/plot.ts";
    import { runFolderStore } from "${root}/src/train/run-folder-store.ts";
    const dir = ${JSON.stringify(dir)};
    const store = runFolderStore(dir + "/run");
    store.startLog(undefined);
    const weights = new WeightStore();
    try { writeFileSync(dir + "/filler", new Uint8Array(1 << 20)); } catch {}
    const writers = {
      plot: () => writePlot(dir + "/loss", { kind: "line", title: "t", xLabel: "x", yLabel: "y", series: [{ name: "s", points: [[0, 1], [1, 2]] }] }),
      curve: () => writeCurvePlot(dir + "/curve", { title: "t", xLabel: "x", yLabel: "y", lines: [{ name: "s", points: [{ x: 1, y: 1 }] }] }),
      atomic: () => writeFileAtomic(dir + "/results.json", "{}"),
      gguf: () => writeGguf(dir + "/a.gguf", new Map(), [{ name: "w", shape: [64], data: new Float32Array(64), type: "F32" }]),
      log: () => store.log({ type: "train", step: 1, loss: 1 }),
      lock: () => acquireLock(dir + "/.lock", "the folder"),
      weights: () => weights.locate(new Float32Array(4096)),
    };
    const out = {};
    for (const [name, write] of Object.entries(writers)) {
      try { await write(); out[name] = "written"; } catch (e) { out[name] = describeSystemError(e) ?? String(e); }
    }
    out.files = (await import("node:fs")).readdirSync(dir).sort();
    console.log(JSON.stringify(out));
  `;
  try {
    const r = onTinyDisk(dir, "64k", ["env", `TMPDIR=${dir}`, process.execPath, "--import", "tsx", "--input-type=module", "-e", script]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const expect: Record<string, string> = {
      plot: "loss.svg",
      curve: "curve.svg",
      atomic: "results.json",
      gguf: "a.gguf",
      log: "run/metrics.jsonl",
      lock: ".lock",
      weights: "weights.bin",
    };
    for (const [writer, file] of Object.entries(expect)) {
      assert.match(out[writer], /^write \S+ failed \(ENOSPC\): no space left on the device/, `${writer}: ${out[writer]}`);
      assert.ok(out[writer].split(" ")[1].endsWith(file), `${writer} names ${out[writer].split(" ")[1]}, not …/${file}`);
    }
    assert.ok(!out.files.some((f: string) => f.includes(".tmp")), `temporary files left: ${out.files}`);
  } finally {
    cleanup();
  }
});
