/**
 * The Ollama Modelfiles `export --to gguf` writes, read by Ollama's rules (ollama-modelfile.ts):
 * they parse, their FROM / ADAPTER paths resolve against the Modelfile's folder (not the
 * working directory) to the exported files, FROM names a model GGUF and ADAPTER a LoRA adapter
 * GGUF of the same architecture (what `ollama create` files as model and adapter layers), and
 * the model carries the chat template Ollama matches its own templates against.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gguf as parseGguf } from "@huggingface/gguf";
import { saveAdapter } from "../src/adapters/format.ts";
import { exportAsGguf } from "../src/experiments/gguf-export.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { mixedRankAdapter, tinyLmWithBpe } from "./gguf-fixtures.ts";
import { tempDir } from "./helpers.ts";
import { modelfilePath, parseModelfile } from "./ollama-modelfile.ts";

const metadata = async (file: string) => (await parseGguf(file, { allowLocalFile: true })).metadata as Record<string, unknown>;

test("Ollama's Modelfile rules: commands, comments, quoted and multi-line values, PARAMETER names, a required FROM", () => {
  const cmds = parseModelfile('# a comment\nfrom ./m.gguf\nPARAMETER stop "<|im_end|>"\nTEMPLATE """{{ .System }}\n{{ .Prompt }}"""\nSYSTEM  be brief \n');
  assert.deepEqual(cmds, [
    { name: "model", args: "./m.gguf" },
    { name: "stop", args: "<|im_end|>" },
    { name: "template", args: "{{ .System }}\n{{ .Prompt }}" },
    { name: "system", args: "be brief" },
  ]);
  assert.throws(() => parseModelfile("ADAPTER ./a.gguf\n"), /no FROM line/);
  assert.throws(() => parseModelfile("FROM ./m.gguf\nLORA ./a.gguf\n"), /\(line 2\): command must be one of/);
  assert.equal(modelfilePath("./m.gguf", "/x/y"), "/x/y/m.gguf");
  assert.equal(modelfilePath("/abs/m.gguf", "/x/y"), "/abs/m.gguf");
});

test("export --to gguf: both Modelfiles resolve, from their own folder, to a model GGUF and a LoRA adapter GGUF Ollama files as such", async () => {
  const { dir, cleanup } = tempDir("gguf-ollama");
  try {
    mkdirSync(join(dir, "model"));
    const modelDir = tinyLmWithBpe("qwen2", join(dir, "model"));
    const model = loadModel(modelDir);
    saveAdapter(join(dir, "adapter"), mixedRankAdapter(model, 2), modelContext(model));
    const out = join(dir, "out");
    exportAsGguf(join(dir, "adapter"), out, { model: modelDir, outType: "f16" });
    const read = (name: string) => {
      const file = join(out, name);
      const cmds = parseModelfile(readFileSync(file, "utf8"));
      const path = (cmd: string) => {
        const c = cmds.filter((x) => x.name === cmd);
        assert.equal(c.length, 1, `one ${cmd} in ${name}`);
        const p = modelfilePath(c[0].args, dirname(file));
        assert.ok(existsSync(p), `${name}: ${c[0].args} resolves to ${p}`);
        // relative to the Modelfile, not to where `ollama create` runs
        assert.ok(!existsSync(modelfilePath(c[0].args, process.cwd())), `${name}: ${c[0].args} does not resolve from the working directory`);
        return p;
      };
      return { cmds, path };
    };
    const merged = read("Modelfile");
    assert.deepEqual(
      merged.cmds.map((c) => c.name),
      ["model"],
    );
    const mergedMeta = await metadata(merged.path("model"));
    assert.equal(mergedMeta["general.type"], "model");
    assert.equal(mergedMeta["general.architecture"], "qwen2");
    const template = JSON.parse(readFileSync(join(modelDir, "tokenizer_config.json"), "utf8")).chat_template;
    assert.equal(mergedMeta["tokenizer.chat_template"], template, "the chat template Ollama detects its template from");

    const lora = read("Modelfile.adapter");
    assert.deepEqual(lora.cmds.map((c) => c.name).sort(), ["adapter", "model"]);
    const base = await metadata(lora.path("model"));
    const adapter = await metadata(lora.path("adapter"));
    assert.equal(base["general.type"], "model");
    assert.equal(adapter["general.type"], "adapter", "Ollama files a GGUF whose general.type is adapter as the adapter layer");
    assert.equal(adapter["adapter.type"], "lora");
    assert.equal(adapter["general.architecture"], base["general.architecture"]);
  } finally {
    cleanup();
  }
});
