/**
 * The `tenslora` command. Each subcommand lives in cli/commands/<name>.ts and registers itself.
 * Failures end in one line: `tenslora: …` and exit 1 for user errors (TensLoRAError, a flag
 * commander rejects, a file the system refuses to read or write); `tenslora: internal error …`
 * and exit 2 for bugs, with the stack and a request to report it. `--debug` adds the stack to
 * every failure.
 */
import { Command } from "commander";
import { TensLoRAError } from "../src/index.ts";
import { commands } from "./commands/index.ts";
import { describeSystemError } from "./errors.ts";
import { resolveModelOption } from "./model-arg.ts";

const debug = process.argv.includes("--debug");
const program = new Command();
program
  .name("tenslora")
  .description(
    "Tensor-factorised low-rank adapters (TensLoRA) and LoRA for HuggingFace Transformers (vision and text encoders, decoder LMs), trained through ONNX Runtime",
  )
  .option("--debug", "print the stack trace of any error")
  // commander's own errors (unknown option, missing argument) as one `tenslora:` line
  .configureOutput({
    outputError: (s, write) =>
      write(
        `tenslora: ${s
          .trim()
          .replace(/^error: /, "")
          .replace(/\s*\n\s*/g, " ")} (see --help)\n`,
      ),
  })
  .version("0.1.0");
for (const register of commands) register(program);
program.hook("preAction", (_, action) => resolveModelOption(action));
// subcommands accept --debug too (it is read from argv above)
for (const cmd of program.commands) if (!cmd.options.some((o) => o.long === "--debug")) cmd.option("--debug", "print the stack trace of any error");

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const system = describeSystemError(e);
  if (e instanceof TensLoRAError || system) {
    console.error(`tenslora: ${system ?? (e as Error).message}`);
    if (debug) console.error((e as Error).stack);
    process.exit(1);
  }
  console.error(`tenslora: internal error: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
  console.error("This is a bug in tenslora. Please report it with the command line and the stack below.");
  console.error(e instanceof Error ? e.stack : String(e));
  process.exit(2);
}
