/**
 * The `tenslora` command. Each subcommand lives in cli/commands/<name>.ts and registers itself;
 * user-facing failures (TensLoRAError) print one clear line and exit 1, never a stack trace.
 */
import { Command } from "commander";
import { TensLoRAError } from "../src/index.ts";
import { commands } from "./commands/index.ts";
import { resolveModelOption } from "./model-arg.ts";

const program = new Command();
program
  .name("tenslora")
  .description("Tensor-factorised low-rank adapters (TensLoRA) and LoRA for ViT and RoBERTa, trained through ONNX Runtime")
  .showHelpAfterError()
  .version("0.1.0");
for (const register of commands) register(program);
program.hook("preAction", (_, action) => resolveModelOption(action));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof TensLoRAError) {
    console.error(`tenslora: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
