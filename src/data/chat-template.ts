/**
 * Chat templates come with model folders from anywhere, and Jinja is a language: a template can
 * loop for hours, build a gigabyte string, recurse without end or fail on purpose
 * (`raise_exception`). @huggingface/jinja interprets it with no limits, and a look at the AST
 * cannot bound `range(n)` or a loop over a computed list, so the render runs on a worker thread
 * under a time budget, a heap limit and a stack limit, and its text under a size budget. A
 * template that breaks any of them is terminated with its thread and reported as the template's
 * fault; the caller never sees an internal error. The call stays synchronous (the caller waits on
 * a shared flag), as tokenising a record is.
 */
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from "node:worker_threads";
import { ChatTemplateError } from "../errors.ts";

export { ChatTemplateError };

export interface TemplateLimits {
  /** Wall time of one render. */
  timeMs: number;
  /** Heap of the rendering thread. */
  heapMb: number;
  /** Characters of one rendered chat. */
  maxChars: number;
}

/**
 * A chat of a few hundred turns renders in milliseconds and to well under a megabyte. The time
 * budget is wall time, so it leaves room for a machine whose cores are busy with other work: a
 * runaway template is still stopped within seconds.
 */
export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { timeMs: 5000, heapMb: 256, maxChars: 4 * 2 ** 20 };

/** Starting the rendering thread (loading the Jinja interpreter) is not the template's time. */
const STARTUP_MS = 30_000;

type Reply = { text: string } | { phase: "parse" | "render" | "size"; message: string };

/**
 * The rendering thread with its limits; one sandbox may render many templates (the thread keeps
 * the last one parsed). A render that breaks the time or memory budget takes the thread down
 * with it, and the next render starts a fresh one.
 */
export class TemplateSandbox {
  #worker?: { thread: Worker; port: MessagePort; flag: Int32Array };

  constructor(readonly limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS) {}

  #start(where: string) {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const thread = new Worker(new URL("./chat-template-worker.mjs", import.meta.url), {
      workerData: { port: port2, flag, maxChars: this.limits.maxChars },
      transferList: [port2],
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
    });
    thread.unref();
    thread.on("error", () => {}); // an out-of-memory template: reported by render() as a broken budget
    if (Atomics.wait(flag, 0, 0, STARTUP_MS) === "timed-out") {
      thread.terminate();
      throw new ChatTemplateError(`${where}: the thread that renders chat templates did not start within ${STARTUP_MS / 1000} s`);
    }
    return { thread, port: port1, flag };
  }

  /** Stop the rendering thread (a later render starts a new one). */
  close(): void {
    this.#worker?.thread.terminate();
    this.#worker?.port.close();
    this.#worker = undefined;
  }

  /** `source` rendered with `context`; `where` names the template in errors. */
  render(source: string, context: Record<string, unknown>, where: string): string {
    this.#worker ??= this.#start(where);
    const { port, flag } = this.#worker;
    Atomics.store(flag, 0, 0);
    port.postMessage({ source, context });
    const woke = Atomics.wait(flag, 0, 0, this.limits.timeMs);
    const reply = receiveMessageOnPort(port)?.message as Reply | undefined;
    if (woke === "timed-out" || !reply) {
      this.close();
      throw new ChatTemplateError(
        `${where}: the chat_template did not finish within ${this.limits.timeMs / 1000} s and ${this.limits.heapMb} MB (an unbounded loop, range or recursion?); fix the template or use "prompt"/"completion" records`,
      );
    }
    if ("text" in reply) return reply.text;
    const why = {
      parse: `the chat_template does not parse: ${reply.message}`,
      render: `the chat_template failed: ${reply.message}`,
      size: `the chat_template rendered ${reply.message} characters, more than the ${this.limits.maxChars} a chat may have`,
    }[reply.phase];
    throw new ChatTemplateError(`${where}: ${why}`);
  }
}

/** A chat template from `where` (e.g. the tokenizer_config.json it came from), rendered in its own sandbox unless given one. */
export class ChatTemplate {
  constructor(
    readonly source: string,
    readonly where: string,
    readonly sandbox: TemplateSandbox = new TemplateSandbox(),
  ) {}

  render(context: Record<string, unknown>): string {
    return this.sandbox.render(this.source, context, this.where);
  }

  close(): void {
    this.sandbox.close();
  }
}
