// The chat-template sandbox's thread (see chat-template.ts): renders one request at a time and
// wakes the caller, which is blocked on the shared flag. Plain JavaScript, so it runs without a
// TypeScript loader in the worker.
import { Template } from "@huggingface/jinja";
import { workerData } from "node:worker_threads";

const { port, flag, maxChars } = workerData;
let cached = { source: undefined, template: undefined };
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
