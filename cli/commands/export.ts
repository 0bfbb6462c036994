/**
 * `tenslora export`: any adapter (TensLoRA or LoRA) as a standard PEFT LoRA folder, exactly
 * (lora_A = U_inᵀ, lora_B = s·R[p,l]ᵀ per adapted layer) or truncated by SVD to --max-rank.
 *
 *   tenslora export runs/vit/best --to lora --out vit-lora
 *   tenslora export runs/vit/best --to lora --out vit-lora-r8 --max-rank 8 --model ./vit
 */
import type { Command } from "commander";
import { ConfigError, exportAsLora } from "../../src/index.ts";

interface ExportOptions {
  to: string;
  out: string;
  model?: string;
  maxRank?: string;
  overwrite?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("export <adapter>")
    .description("write an adapter as a standard PEFT LoRA folder (exact, or SVD-truncated with --max-rank)")
    .requiredOption("--to <format>", "lora")
    .requiredOption("--out <dir>", "output folder (adapter_config.json, adapter_model.safetensors)")
    .option("--model <dir>", "the model folder the adapter was trained on (default: the adapter's base_model_name_or_path)")
    .option("--max-rank <k>", "keep the k leading singular directions of each update and report the relative error")
    .option("--overwrite", "replace what --out already holds (a non-empty folder is refused otherwise)")
    .option("--json", "print the result as JSON")
    .action((adapter: string, o: ExportOptions) => {
      if (o.to !== "lora") throw new ConfigError(`--to ${o.to} is not supported; the only export format is "lora" (PEFT LoRA)`);
      const maxRank = o.maxRank === undefined ? undefined : Number(o.maxRank);
      if (maxRank !== undefined && (!Number.isInteger(maxRank) || maxRank < 1)) throw new ConfigError(`--max-rank must be an integer ≥ 1, got "${o.maxRank}"`);
      const r = exportAsLora(adapter, o.out, { model: o.model, maxRank, overwrite: o.overwrite });
      if (o.json) console.log(JSON.stringify(r));
      else {
        const worst = r.modules.reduce((m, x) => Math.max(m, x.relative_error ?? 0), 0);
        const err = maxRank !== undefined ? `; max rank ${maxRank}, worst relative error ${worst.toExponential(3)}` : "";
        console.log(`exported ${r.modules.length} LoRA modules (ranks ${[...new Set(r.modules.map((m) => m.rank))].join(", ")}) to ${r.dir}${err}`);
      }
    });
}
