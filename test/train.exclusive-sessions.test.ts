/**
 * A runtime with exclusive sessions (onnxruntime-web on WebAssembly copies the frozen weights into
 * each session): `train` never holds two compiled graphs at once, even when it evaluates during
 * training, and computes what it computes with both alive — the same step losses and evaluations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../src/models/load.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import type { CompiledGraph, Runtime } from "../src/runtime/types.ts";
import { lmFineTune } from "../studio/lm-run.ts";
import { LM_FIXTURES } from "./lm-golden.ts";

/** nodeRuntime, counting the graphs alive at once. */
function counted(exclusiveSessions: boolean): { runtime: Runtime; most: () => number; compiled: () => number } {
  let live = 0;
  let most = 0;
  let compiled = 0;
  const runtime: Runtime = {
    name: "node-counted",
    exclusiveSessions,
    compiler: () => {
      const inner = nodeRuntime.compiler();
      return {
        compile: async (graph, o) => {
          const g = await inner.compile(graph, o);
          compiled++;
          most = Math.max(most, ++live);
          const wrapped: CompiledGraph = {
            inputs: g.inputs,
            outputNames: g.outputNames,
            validate: (f) => g.validate(f),
            run: (f, into) => g.run(f, into),
            dispose: () => {
              if (!g.disposed) live--;
              g.dispose();
            },
            get disposed() {
              return g.disposed;
            },
          };
          return wrapped;
        },
        dispose: () => inner.dispose(),
      };
    },
  };
  return { runtime, most: () => most, compiled: () => compiled };
}

test("an exclusive runtime trains and evaluates with one session alive, to the same losses and evaluations", async () => {
  const model = loadModel(join(LM_FIXTURES, "llama"));
  const run = { steps: 6, seqLen: 16, lr: 1e-2, evalEvery: 2 };
  const shared = counted(false);
  const exclusive = counted(true);
  const a = await lmFineTune(model, run, shared.runtime);
  const b = await lmFineTune(model, run, exclusive.runtime);
  assert.equal(shared.most(), 2, "without it the training and evaluation sessions overlap");
  assert.equal(exclusive.most(), 1);
  // one training session, then per evaluation an evaluation session and (but after the last) a new training session
  assert.equal(exclusive.compiled(), 1 + 3 + 2);
  assert.deepEqual(b.losses, a.losses);
  assert.deepEqual(b.evals, a.evals);
  assert.equal(b.evals.length, 3);
});
