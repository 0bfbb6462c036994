/**
 * Text generation with a decoder LM: one step graph with symbolic batch, sequence and past
 * lengths (src/models/llama: KV-cache inputs and outputs), compiled once. Prompts of a batch are
 * left-padded, positions count real tokens only (pads take position 1, as HF's generate does);
 * the first step reads the prompts with an empty cache, every later one the last token with the
 * cache the step before returned. `cache: false` recomputes the whole sequence every step with
 * the same graph (an empty cache), the baseline the cache is measured against.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ConfigError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";
import { buildModelGraph } from "../pipeline/build.ts";
import { BATCH, PAST, SEQ } from "../models/dims.ts";
import type { DecoderConfig } from "../models/llama/config.ts";
import { FAMILIES, type LoadedModel } from "../models/load.ts";
import type { HostTensor } from "../tensor/host.ts";
import type { CompiledGraph, Compiler, Runtime } from "../runtime/types.ts";
import { type SamplingOptions, TokenSampler, checkSampling } from "./sampling.ts";

/** How to generate: the token budget, sampling and when to stop. */
export interface GenerateOptions extends SamplingOptions {
  /** New tokens per prompt at most (default 32). */
  maxNewTokens?: number;
  /** Tokens that end a row (default: the config's eos_token_id). */
  eosTokenIds?: number[];
  /** Reuse keys and values across steps (default true); false recomputes the sequence every step. */
  cache?: boolean;
  /** Ends a row early: called with the row's new tokens after each step (stop strings). */
  isDone?: (row: number, tokens: readonly number[]) => boolean;
}

/** One step's new token per row; undefined where a row had already finished. */
export type StepTokens = (number | undefined)[];

const int64 = (shape: number[], values: ArrayLike<number>): HostTensor => ({ dtype: "int64", shape, data: BigInt64Array.from(Array.from(values, BigInt)) });

/** Token generation for a decoder with a KV cache: a step graph compiled once, run per token. */
export class Generator {
  readonly #graph: CompiledGraph;
  readonly #compiler: Compiler;
  readonly cfg: DecoderConfig;
  /** Tokens that end a row unless told otherwise: eos_token_id of generation_config.json, else of config.json (one id or a list). */
  readonly eosTokenIds: number[];

  private constructor(graph: CompiledGraph, compiler: Compiler, model: LoadedModel) {
    this.#graph = graph;
    this.#compiler = compiler;
    this.cfg = model.config as DecoderConfig;
    const genPath = join(model.dir, "generation_config.json");
    const gen = existsSync(genPath) ? (readJsonFile(genPath, "generation config") as Record<string, unknown>) : {};
    const ids = gen.eos_token_id ?? model.rawConfig.eos_token_id;
    this.eosTokenIds = (Array.isArray(ids) ? ids : [ids]).filter((x): x is number => typeof x === "number");
  }

  /** Compile the step graph of `model` (with `adapter` applied unmerged, if given). */
  static async create(model: LoadedModel, adapter: AdapterSet | undefined, opts: { runtime: Runtime; threads?: number }): Promise<Generator> {
    if (!model.family.cacheInputs) {
      const types = Object.values(FAMILIES).filter((f) => Object.values(f.heads).some((h) => h.cacheInputs));
      throw new ConfigError(
        `generation needs a causal LM (${types.map((f) => f.modelType).join(", ")}); ${model.dir} is a ${model.family.modelType} ${model.family.task} model`,
      );
    }
    const built = buildModelGraph({ model, adapter, batch: BATCH, seqLen: SEQ, past: PAST, trainable: "none", lastLogits: true });
    const compiler = opts.runtime.compiler();
    try {
      return new Generator(await compiler.compile(built.graph, { threads: opts.threads }), compiler, model);
    } catch (e) {
      compiler.dispose();
      throw e;
    }
  }

  /** The new tokens of every prompt (token ids), one step at a time. */
  async *tokens(prompts: number[][], opts: GenerateOptions = {}): AsyncGenerator<StepTokens> {
    const cfg = this.cfg;
    checkSampling(opts);
    const maxNew = opts.maxNewTokens ?? 32;
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new ConfigError(`max new tokens ${maxNew} must be a positive integer`);
    if (!prompts.length || prompts.some((p) => p.length === 0)) throw new ConfigError("every prompt needs at least one token");
    const longest = Math.max(...prompts.map((p) => p.length));
    if (longest + maxNew > cfg.maxPositionEmbeddings) {
      throw new ConfigError(
        `a ${longest}-token prompt and ${maxNew} new tokens exceed the model's ${cfg.maxPositionEmbeddings} positions; lower --max-new-tokens or shorten the prompt`,
      );
    }
    const eos = new Set(opts.eosTokenIds ?? this.eosTokenIds);
    const pad = cfg.padTokenId ?? [...eos][0] ?? 0;
    const B = prompts.length;
    const samplers = prompts.map((_, r) => new TokenSampler(opts, r));
    // the whole left-padded sequence so far, and its mask
    const seqs = prompts.map((p) => [...new Array<number>(longest - p.length).fill(pad), ...p]);
    const masks = prompts.map((p) => [...new Array<number>(longest - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
    const outs: number[][] = prompts.map(() => []);
    const done = new Array<boolean>(B).fill(false);
    const useCache = opts.cache ?? true;
    let past: Record<string, HostTensor> | undefined;
    // the cache lives in two buffers per layer and kind, sized for the whole generation: each step
    // writes its present into the one the past is not read from, so ONNX Runtime writes the
    // cache straight into them instead of allocating it and copying it out every step
    const cacheCap = B * cfg.numKeyValueHeads * (longest + maxNew) * cfg.headDim;
    const buffers = useCache ? [0, 1].map(() => new Map<string, Float32Array>()) : [];
    const presentInto = (step: number, L: number): Record<string, HostTensor> => {
      const into: Record<string, HostTensor> = {};
      if (!useCache) return into;
      const shape = [B, cfg.numKeyValueHeads, L, cfg.headDim];
      for (let l = 0; l < cfg.numHiddenLayers; l++) {
        for (const kv of ["key", "value"]) {
          const name = `present.${l}.${kv}`;
          const side = buffers[step % 2];
          if (!side.has(name)) side.set(name, new Float32Array(cacheCap));
          into[name] = { dtype: "float32", shape, data: side.get(name)!.subarray(0, B * cfg.numKeyValueHeads * L * cfg.headDim) };
        }
      }
      return into;
    };
    for (let step = 0; step < maxNew; step++) {
      const L = seqs[0].length;
      const fresh = !useCache || !past;
      const T = fresh ? L : 1;
      const positions = masks.map((m) => {
        let c = 0;
        return m.map((v) => (v ? c++ : 1)).slice(L - T);
      });
      const feeds: Record<string, HostTensor> = {
        input_ids: int64(
          [B, T],
          seqs.flatMap((s) => s.slice(L - T)),
        ),
        attention_mask: int64([B, L], masks.flat()),
        position_ids: int64([B, T], positions.flat()),
      };
      for (let l = 0; l < cfg.numHiddenLayers; l++) {
        for (const kv of ["key", "value"]) {
          feeds[`past_key_values.${l}.${kv}`] = fresh
            ? { dtype: "float32", shape: [B, cfg.numKeyValueHeads, 0, cfg.headDim], data: new Float32Array(0) }
            : past![`present.${l}.${kv}`];
        }
      }
      const out = await this.#graph.run(feeds, presentInto(step, L));
      past = out;
      const logits = out.logits.data as Float32Array;
      const V = cfg.vocabSize;
      const tokens: StepTokens = [];
      for (let r = 0; r < B; r++) {
        if (done[r]) {
          tokens.push(undefined);
          seqs[r].push(pad);
          masks[r].push(1);
          continue;
        }
        const t = samplers[r].next(logits.subarray(r * V, (r + 1) * V), [...prompts[r], ...outs[r]]);
        tokens.push(t);
        outs[r].push(t);
        seqs[r].push(t);
        masks[r].push(1);
        if (eos.has(t) || opts.isDone?.(r, outs[r])) done[r] = true;
      }
      yield tokens;
      if (done.every(Boolean)) return;
    }
  }

  /** Release the compiled sessions and the weight file. */
  dispose(): void {
    this.#graph.dispose();
    this.#compiler.dispose();
  }
}
