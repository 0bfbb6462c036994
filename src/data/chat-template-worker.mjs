// The chat-template sandbox's thread (see chat-template.ts): renders one request at a time and
// wakes the caller, which is blocked on the shared flag. Plain JavaScript, so it runs without a
// TypeScript loader in the worker.
import { Environment, Template } from "@huggingface/jinja";
import { workerData } from "node:worker_threads";

const { port, flag, maxChars } = workerData;
let cached = { source: undefined, template: undefined };

// jinja's own range() builds its whole list in one growing array: range(10⁹) exhausts this
// thread's heap in an allocation V8 treats as fatal to the whole process, not only the thread.
// Templates get this one instead, which refuses a list longer than any chat needs: jinja declares
// its globals through Environment.set, the one place to swap it in (this thread's copy only).
const MAX_RANGE = 1_000_000;
function range(start, stop, step = 1) {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("range() step must not be zero");
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (!(length <= MAX_RANGE)) throw new Error(`range() of ${length} items is over the ${MAX_RANGE} a chat template may build`);
  return Array.from({ length }, (_, i) => start + i * step);
}
const set = Environment.prototype.set;
Environment.prototype.set = function (name, value) {
  return set.call(this, name, name === "range" && typeof value === "function" ? range : value);
};
const wake = () => {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};

port.on("message", ({ source, context }) => {
  let reply;
  try {
    if (cached.source !== source) cached = { source, template: new Template(source) };
  } catch (e) {
    reply = { phase: "parse", message: String(e?.message ?? e) };
  }
  if (!reply) {
    try {
      const text = cached.template.render(context);
      reply = text.length > maxChars ? { phase: "size", message: String(text.length) } : { text };
    } catch (e) {
      reply = { phase: "render", message: String(e?.message ?? e) };
    }
  }
  port.postMessage(reply);
  wake();
});
wake(); // loaded: the caller's time budget starts with its first render, not with this thread's start
