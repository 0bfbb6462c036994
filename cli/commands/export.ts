/**
 * `tenslora export`: any adapter (TensLoRA or LoRA) as a standard PEFT LoRA folder, exactly
 * (lora_A = U_inᵀ, lora_B = s·R[p,l]ᵀ per adapted layer) or truncated by SVD to --max-rank; or,
 * for a decoder, as GGUF files for llama.cpp and Ollama (adapter, base and merged model).
 *
 *   tenslora export runs/vit/best --to lora --out vit-lora
 *   tenslora export runs/vit/best --to lora --out vit-lora-r8 --max-rank 8 --model ./vit
 *   tenslora export runs/lm/best --to lora --out lm-lora --uniform-rank
 *   tenslora export runs/lm/best --to gguf --out lm-gguf --outtype q8_0
 */
import type { Command } from "commander";
import { ConfigError, GGUF_OUT_TYPES, type GgufOutType, exportAsGguf, exportAsLora } from "../../src/index.ts";

interface ExportOptions {
  to: string;
  out: string;
  model?: string;
  maxRank?: string;
  overwrite?: boolean;
  uniformRank?: boolean;
  outtype?: string;
  json?: boolean;
}

const FORMATS = ["lora", "gguf"];

export function register(program: Command): void {
  program
    .command("export <adapter>")
    .description("write an adapter as a standard PEFT LoRA folder (exact, or SVD-truncated with --max-rank), or as GGUF for llama.cpp / Ollama")
    .requiredOption("--to <format>", "lora (PEFT) or gguf (llama.cpp: adapter.gguf, base.gguf, merged.gguf, Ollama Modelfiles)")
    .requiredOption("--out <dir>", "output folder")
    .option("--model <dir>", "the model folder the adapter was trained on (default: the adapter's base_model_name_or_path)")
    .option("--max-rank <k>", "keep the k leading singular directions of each update and report the relative error")
    .option("--overwrite", "replace what --out already holds (a non-empty folder is refused otherwise)")
    .option("--uniform-rank", "lora: zero-pad every module to the largest rank, so llama.cpp's convert_lora_to_gguf.py reads it right too")
    .option("--outtype <type>", `gguf: ${GGUF_OUT_TYPES.join(", ")} for base.gguf and merged.gguf (the adapter is F32 with f32, else F16)`, "f16")
    .option("--json", "print the result as JSON")
    .action((adapter: string, o: ExportOptions) => {
      if (!FORMATS.includes(o.to)) throw new ConfigError(`--to ${o.to} is not supported; export formats: "lora" (PEFT LoRA), "gguf" (llama.cpp / Ollama)`);
      const maxRank = o.maxRank === undefined ? undefined : Number(o.maxRank);
      if (maxRank !== undefined && (!Number.isInteger(maxRank) || maxRank < 1)) throw new ConfigError(`--max-rank must be an integer ≥ 1, got "${o.maxRank}"`);
      if (o.to === "gguf") {
        if (o.uniformRank) throw new ConfigError("--uniform-rank is for --to lora; the GGUF adapter is right under llama.cpp's scaling at any ranks");
        if (!(GGUF_OUT_TYPES as readonly string[]).includes(o.outtype!))
          throw new ConfigError(`--outtype ${o.outtype} is not one of ${GGUF_OUT_TYPES.join(", ")}`);
        const r = exportAsGguf(adapter, o.out, { model: o.model, maxRank, outType: o.outtype as GgufOutType });
        if (o.json) console.log(JSON.stringify(r));
        else
          console.log(
            `exported ${r.modules.length} LoRA modules (ranks ${[...new Set(r.modules.map((m) => m.rank))].join(", ")}) as ${r.arch} GGUF (${r.outType}) to ${r.dir}: ${r.files.join(", ")}`,
          );
        return;
      }
      const r = exportAsLora(adapter, o.out, { model: o.model, maxRank, uniformRank: o.uniformRank, overwrite: o.overwrite });
      if (o.json) console.log(JSON.stringify(r));
      else {
        const worst = r.modules.reduce((m, x) => Math.max(m, x.relative_error ?? 0), 0);
        const err = maxRank !== undefined ? `; max rank ${maxRank}, worst relative error ${worst.toExponential(3)}` : "";
        console.log(`exported ${r.modules.length} LoRA modules (ranks ${[...new Set(r.modules.map((m) => m.rank))].join(", ")}) to ${r.dir}${err}`);
        const names = { peft: "PEFT", vllm: "vLLM", llama_cpp: "llama.cpp's convert_lora_to_gguf.py" };
        const right = Object.entries(r.readers).filter(([, ok]) => ok);
        const wrong = Object.entries(r.readers).filter(([, ok]) => !ok);
        console.log(
          `read as this update by: ${right.map(([k]) => names[k as keyof typeof names]).join(", ")}` +
            (wrong.length
              ? `; not by ${wrong.map(([k]) => names[k as keyof typeof names]).join(", ")} (ranks differ: add --uniform-rank, or use --to gguf)`
              : ""),
        );
        console.log(
          r.vllm_max_lora_rank === null
            ? "vLLM: a rank above 512, more than any --max-lora-rank; lower it with --max-rank"
            : `vLLM: serve with --max-lora-rank ${r.vllm_max_lora_rank} or more`,
        );
      }
    });
}
