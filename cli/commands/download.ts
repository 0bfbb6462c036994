/** `tenslora download`: a Hub model into the Hugging Face cache; prints the snapshot folder the other commands take as --model (as does the repo id itself). */
import type { Command } from "commander";
import { ConfigError, downloadModel } from "../../src/index.ts";

/** "500000", "800M", "20G" (powers of 1024) → bytes. */
export function parseByteSize(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * 1024 ** " KMGT".indexOf((m[2] || " ").toUpperCase()) : Number.NaN;
  if (!Number.isFinite(n) || n < 1) throw new ConfigError(`${flag} takes a size in bytes such as 500000, 800M or 20G, got "${v}"`);
  return Math.floor(n);
}

export function register(program: Command): void {
  program
    .command("download <repo>")
    .description(
      "download a HuggingFace model (config, safetensors weights, tokenizer/preprocessor) into the Hugging Face cache ($HF_HOME/hub); $HF_ENDPOINT and $HF_TOKEN are honoured",
    )
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option("--max-download-size <bytes>", "refuse when the files together declare more (e.g. 2G)")
    .option("--stall-timeout <seconds>", "abort a transfer that receives nothing for this long", "60")
    .action(async (repo: string, opts: { revision: string; maxDownloadSize?: string; stallTimeout: string }) => {
      const stall = Number(opts.stallTimeout);
      if (!(stall > 0) || !Number.isFinite(stall)) throw new ConfigError(`--stall-timeout takes a positive number of seconds, got "${opts.stallTimeout}"`);
      const dir = await downloadModel(repo, {
        revision: opts.revision,
        maxBytes: opts.maxDownloadSize === undefined ? undefined : parseByteSize("--max-download-size", opts.maxDownloadSize),
        stallMs: stall * 1000,
        log: (s) => console.error(s),
      });
      console.log(dir);
    });
}
