/**
 * A declarative map from checkpoint keys to model parameter names. A model declares its rules
 * once; loading then checks every key and every shape and reports all problems in one error
 * (missing, unexpected, mis-shaped and doubly-mapped parameters), instead of stopping at the first.
 *
 * Rules are tried in declaration order and the first that matches a key decides it. A key no
 * rule matches keeps its name. Kinds:
 * - `{ exact, to }`: rename one key.
 * - `{ prefix, to }`: replace a leading prefix (`{ prefix: "vit.", to: "" }` strips it).
 * - `{ pattern, to }`: a regex that must match the whole key; `to` may use `$1` / `$<name>`.
 * - `{ ignore }`: drop keys the model does not use (an exact key or a whole-key regex).
 * A rename rule may carry a `transform` (e.g. `transpose2d`) applied to the tensor when loading;
 * the shape check compares the transformed shape.
 *
 * @example
 * const mapper = new WeightMapper([
 *   { ignore: /pooler\..+/ },
 *   { pattern: /vit\.encoder\.layer\.(\d+)\.(.*)/, to: "layers.$1.$2" },
 *   { prefix: "vit.", to: "" },
 * ]);
 * const weights = new Map(mapper.load(loadCheckpointTensors(dir), model.parameterShapes(), dir));
 */
import { ConfigError, FormatError, ShapeError } from "../errors.ts";

/** A change of layout applied to one tensor while loading. */
export interface WeightTransform {
  /** Named in error messages. */
  name: string;
  /** The shape after the transform; throws ShapeError when the input shape does not fit. */
  shape(shape: readonly number[]): number[];
  /** The row-major data after the transform. */
  apply(data: Float32Array, shape: readonly number[]): Float32Array;
}

/** Swap the two axes of a matrix: HF `[out, in]` weights to `[in, out]` and back. */
export const transpose2d: WeightTransform = {
  name: "transpose2d",
  shape(shape) {
    if (shape.length !== 2) {
      throw new ShapeError(`transpose2d needs a 2-D tensor, found shape [${shape.join(", ")}]`);
    }
    return [shape[1], shape[0]];
  },
  apply(data, shape) {
    const [cols, rows] = transpose2d.shape(shape);
    const out = new Float32Array(data.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
    }
    return out;
  },
};

export type WeightRule =
  | { exact: string; to: string; transform?: WeightTransform }
  | { prefix: string; to: string; transform?: WeightTransform }
  | { pattern: RegExp; to: string; transform?: WeightTransform }
  | { ignore: string | RegExp };

/** Where one model parameter comes from. */
export interface PlannedWeight {
  /** The checkpoint key. */
  source: string;
  /** The parameter's shape (after the transform). */
  shape: number[];
  transform?: WeightTransform;
}

export interface WeightPlan {
  /** Model parameter name → its source, one entry per expected parameter. */
  weights: Map<string, PlannedWeight>;
  /** Checkpoint keys dropped by `ignore` rules. */
  ignored: string[];
}

/** What the rules decide for one key: a rename (maybe transformed) or a drop. */
export type KeyDecision = { target: string; transform?: WeightTransform } | "ignore";

interface CompiledRule {
  decide(key: string): KeyDecision | undefined;
}

/** Each problem list shows this many lines, then a count of the rest. */
const MAX_LISTED = 20;

export class WeightMapper {
  readonly #rules: CompiledRule[];

  constructor(rules: readonly WeightRule[]) {
    this.#rules = rules.map((rule, i) => compileRule(rule, i));
  }

  /** The model parameter name for a checkpoint key, or "ignore". */
  map(key: string): KeyDecision {
    for (const rule of this.#rules) {
      const decision = rule.decide(key);
      if (decision !== undefined) return decision;
    }
    return { target: key };
  }

  /**
   * Match a checkpoint against the model's parameter shapes. Throws one FormatError naming
   * `source` (the checkpoint file or folder) and listing every missing, unexpected, mis-shaped
   * or doubly-mapped parameter.
   */
  apply(checkpoint: ReadonlyMap<string, { shape: readonly number[] }>, expected: ReadonlyMap<string, readonly number[]>, source: string): WeightPlan {
    const weights = new Map<string, PlannedWeight>();
    // target → the first key mapped to it, whether or not its shape fits
    const claimedBy = new Map<string, string>();
    const ignored: string[] = [];
    const unexpected: string[] = [];
    const misShaped: string[] = [];
    const duplicated: string[] = [];
    for (const [key, { shape }] of checkpoint) {
      const decision = this.map(key);
      if (decision === "ignore") {
        ignored.push(key);
        continue;
      }
      const { target, transform } = decision;
      const renamed = target === key ? `"${key}"` : `"${key}" → "${target}"`;
      const want = expected.get(target);
      if (want === undefined) {
        unexpected.push(`${renamed}: the model has no such parameter`);
        continue;
      }
      const previous = claimedBy.get(target);
      if (previous !== undefined) {
        duplicated.push(`"${target}" comes from both "${previous}" and "${key}"`);
        continue;
      }
      claimedBy.set(target, key);
      let found: number[];
      try {
        found = transform ? transform.shape(shape) : [...shape];
      } catch (err) {
        if (!(err instanceof ShapeError)) throw err;
        misShaped.push(`${renamed}: ${err.message}`);
        continue;
      }
      if (!sameShape(found, want)) {
        const how = transform ? ` after ${transform.name} of [${shape.join(", ")}]` : "";
        misShaped.push(`${renamed}: expected [${want.join(", ")}], found [${found.join(", ")}]${how}`);
        continue;
      }
      weights.set(target, { source: key, shape: found, transform });
    }
    const missing = [...expected]
      .filter(([name]) => !claimedBy.has(name))
      .map(([name, shape]) => `"${name}" [${shape.join(", ")}]: no checkpoint key maps to it`);
    const problems = missing.length + unexpected.length + misShaped.length + duplicated.length;
    if (problems > 0) {
      throw new FormatError(
        `${source}: the checkpoint's tensors must map one-to-one onto the model's ` +
          `${expected.size} parameters with equal shapes, but ${problems} do not:\n` +
          formatProblems([
            ["missing", missing],
            ["unexpected", unexpected],
            ["mis-shaped", misShaped],
            ["mapped twice", duplicated],
          ]) +
          `\nCheck that config.json matches the checkpoint, or add rename / ignore rules to the ` +
          `model's WeightMapper.`,
      );
    }
    return { weights, ignored };
  }

  /**
   * `apply`, then each parameter's data in turn: read from a lazy tensor only when its turn comes
   * (so a caller can quantize or drop it before the next is read), transformed where its rule
   * says so, otherwise the checkpoint's own array (shared, not copied).
   */
  *load(
    checkpoint: ReadonlyMap<string, { shape: readonly number[] } & ({ data: Float32Array } | { read(): Float32Array })>,
    expected: ReadonlyMap<string, readonly number[]>,
    source: string,
  ): Generator<[string, { shape: number[]; data: Float32Array }]> {
    for (const [target, w] of this.apply(checkpoint, expected, source).weights) {
      const tensor = checkpoint.get(w.source)!;
      const values = "data" in tensor ? tensor.data : tensor.read();
      yield [target, { shape: w.shape, data: w.transform ? w.transform.apply(values, tensor.shape) : values }];
    }
  }
}

function compileRule(rule: WeightRule, index: number): CompiledRule {
  const kinds = (["exact", "prefix", "pattern", "ignore"] as const).filter((k) => k in rule);
  if (kinds.length !== 1) {
    throw new ConfigError(
      `WeightMapper rule ${index} must have exactly one of exact, prefix, pattern or ignore, ` +
        `found ${kinds.length === 0 ? "none" : kinds.join(" and ")}: ${JSON.stringify(rule)}`,
    );
  }
  if ("ignore" in rule) {
    const { ignore } = rule;
    const matches = typeof ignore === "string" ? (k: string) => k === ignore : wholeMatch(ignore);
    return { decide: (key) => (matches(key) ? "ignore" : undefined) };
  }
  if (typeof rule.to !== "string") {
    throw new ConfigError(`WeightMapper rule ${index} renames keys, so "to" must be a string, found ` + `${JSON.stringify(rule.to)}`);
  }
  const { to, transform } = rule;
  if ("exact" in rule) {
    return { decide: (key) => (key === rule.exact ? { target: to, transform } : undefined) };
  }
  if ("prefix" in rule) {
    const { prefix } = rule;
    return {
      decide: (key) => (key.startsWith(prefix) ? { target: to + key.slice(prefix.length), transform } : undefined),
    };
  }
  const whole = anchored(rule.pattern);
  return {
    decide: (key) => (whole.test(key) ? { target: key.replace(whole, to), transform } : undefined),
  };
}

/** The regex anchored to the whole key, without the global / sticky flags that make it stateful. */
function anchored(pattern: RegExp): RegExp {
  return new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace(/[gy]/g, ""));
}

function wholeMatch(pattern: RegExp): (key: string) => boolean {
  const whole = anchored(pattern);
  return (key) => whole.test(key);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Titled problem lists for one error message; empty lists are left out, long ones cut. */
export function formatProblems(sections: readonly [title: string, lines: string[]][]): string {
  return sections
    .filter(([, lines]) => lines.length > 0)
    .map(([title, lines]) => {
      const shown = lines.slice(0, MAX_LISTED).map((l) => `    ${l}`);
      if (lines.length > MAX_LISTED) shown.push(`    … and ${lines.length - MAX_LISTED} more`);
      return `  ${title} (${lines.length}):\n${shown.join("\n")}`;
    })
    .join("\n");
}
