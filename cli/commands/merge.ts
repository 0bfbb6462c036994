/**
 * `tenslora merge`: fold a trained adapter (or apply a trained head / full model) into a standard
 * HuggingFace folder, and with --onnx also write model.onnx that onnxruntime runs on its own.
 */
import type { Command } from "commander";
import { mergeToFolder } from "../../src/index.ts";

export function register(program: Command): void {
  program
    .command("merge")
    .description("fold an adapter into the model's weights: a HuggingFace folder (and an ONNX inference graph with --onnx)")
    .requiredOption("--model <dir>", "HuggingFace model folder the adapter was trained on")
    .requiredOption("--adapter <dir>", "adapter folder (PEFT LoRA or TensLoRA), head folder or full model folder, e.g. RUN_DIR/best")
    .requiredOption("--out <dir>", "output folder (config.json, model.safetensors, tokenizer/preprocessor files)")
    .option("--onnx", "also write model.onnx (inputs by HF names, dynamic batch/sequence, output logits; model.onnx_data when over 2 GB)")
    .option("--json", "print the result as JSON")
    .action(async (opts: { model: string; adapter: string; out: string; onnx?: boolean; json?: boolean }) => {
      const r = await mergeToFolder(opts.model, opts.adapter, opts.out, { onnx: Boolean(opts.onnx) });
      if (opts.json) console.log(JSON.stringify(r));
      else {
        const what = r.mergedProjections ? `${r.mergedProjections} adapted projections folded in` : "trained weights applied";
        console.log(`merged into ${r.dir} (${what}${r.labels.length ? `; ${r.labels.length} labels: ${r.labels.join(", ")}` : ""}): ${r.files.join(", ")}`);
      }
    });
}
