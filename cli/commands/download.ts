/** `tenslora download`: a Hub model into a local folder the other commands take as --model. */
import { join } from "node:path";
import type { Command } from "commander";
import { cacheDir, downloadModel } from "../../src/index.ts";

export function register(program: Command): void {
  program
    .command("download <repo>")
    .description("download a HuggingFace model (config, safetensors weights, tokenizer/preprocessor) into a folder")
    .option("--out <dir>", "target folder (default: <cache>/models/<repo>)")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .action(async (repo: string, opts: { out?: string; revision: string }) => {
      const dir = opts.out ?? join(cacheDir(), "models", repo);
      await downloadModel(repo, dir, { revision: opts.revision, log: (s) => console.error(s) });
      console.log(dir);
    });
}
