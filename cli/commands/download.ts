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
    .option("--min-rate <bytes>", "abort a transfer that averages less per second over a --stall-timeout window (e.g. 1K)", "1K")
    .option("--deadline <minutes>", "abort the whole download after this long (run it again to resume)", "360")
    .action(async (repo: string, opts: { revision: string; maxDownloadSize?: string; stallTimeout: string; minRate: string; deadline: string }) => {
      const positive = (flag: string, v: string) => {
        const n = Number(v);
        if (!(n > 0) || !Number.isFinite(n))
          throw new ConfigError(`${flag} takes a positive number of ${flag === "--deadline" ? "minutes" : "seconds"}, got "${v}"`);
        return n;
      };
      const dir = await downloadModel(repo, {
        revision: opts.revision,
        maxBytes: opts.maxDownloadSize === undefined ? undefined : parseByteSize("--max-download-size", opts.maxDownloadSize),
        stallMs: positive("--stall-timeout", opts.stallTimeout) * 1000,
        minBytesPerSec: parseByteSize("--min-rate", opts.minRate),
        deadlineMs: positive("--deadline", opts.deadline) * 60_000,
        log: (s) => console.error(s),
      });
      console.log(dir);
    });
}
