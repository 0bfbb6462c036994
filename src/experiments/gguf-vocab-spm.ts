/**
 * A SentencePiece-style BPE tokenizer.json (Llama 2, Mistral 7B, TinyLlama: BPE with
 * byte_fallback, spaces as "▁", `<0xNN>` byte tokens) as llama.cpp's "llama" vocabulary, derived
 * from tokenizer.json alone (no tokenizer.model). llama.cpp's SentencePiece tokenizer merges the
 * adjacent pair whose concatenation is the highest-scoring vocabulary token, where HF's BPE
 * applies the lowest-ranked merge; so a token's score is minus the rank of the first merge that
 * produces it (tokens no merge produces score below every merge), which makes both pick the same
 * pair. Its whitespace handling must be one llama.cpp has: "▁" for every space, and a "▁"
 * prepended (`add_space_prefix`) or not; a Metaspace that splits words is refused, since
 * llama.cpp's merges cross "▁".
 */
import { ConfigError } from "../errors.ts";

type Json = Record<string, unknown>;

const SPACE = "▁";
const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;
const describe = (p: unknown) => JSON.stringify(p).slice(0, 160);

/** Whether `tok` is a BPE model with byte fallback, the HF form of a SentencePiece BPE tokenizer. */
export const isSentencePieceBpe = (tok: Json): boolean => {
  const model = (tok.model ?? {}) as Json;
  return model.type === "BPE" && model.byte_fallback === true;
};

const isReplaceSpace = (n: Json) => n.type === "Replace" && (n.pattern as Json | undefined)?.String === " " && n.content === SPACE;

/**
 * llama.cpp's add_space_prefix for the tokenizer's whitespace handling: the Llama 2 normalizer
 * (Prepend "▁", Replace " " → "▁"), or a Metaspace pre-tokenizer that does not split; anything
 * else is refused with the reason.
 */
export function spaceHandling(tok: Json, path: string): { addSpacePrefix: boolean } {
  const norm = (tok.normalizer ?? null) as Json | null;
  const pre = (tok.pre_tokenizer ?? null) as Json | null;
  const steps = norm === null ? [] : norm.type === "Sequence" ? ((norm.normalizers ?? []) as Json[]) : [norm];
  if (pre === null && steps.some(isReplaceSpace)) {
    const rest = steps.filter((s) => !isReplaceSpace(s));
    if (rest.length === 0) return { addSpacePrefix: false };
    if (rest.length === 1 && rest[0].type === "Prepend" && rest[0].prepend === SPACE && steps[0] === rest[0]) return { addSpacePrefix: true };
  }
  if (norm === null && pre?.type === "Metaspace" && pre.replacement === SPACE && pre.split === false) {
    const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? "never" : "always");
    if (scheme === "first" || scheme === "always") return { addSpacePrefix: true };
    if (scheme === "never") return { addSpacePrefix: false };
  }
  throw new ConfigError(
    `${path}: a byte-fallback BPE tokenizer with normalizer ${describe(norm)} and pre-tokenizer ${describe(pre)} has whitespace handling llama.cpp does not reproduce; ` +
      `supported: spaces replaced by "▁" (optionally a "▁" prepended) and no word splitting. Export the merged safetensors (tenslora merge) and convert them with llama.cpp's convert_hf_to_gguf.py`,
  );
}

/** Scores by token: minus the rank of the first merge producing it; tokens no merge produces get one less than the last merge. */
export function mergeScores(merges: readonly (string | readonly string[])[]): { score: (token: string) => number } {
  const rank = new Map<string, number>();
  merges.forEach((m, r) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    const merged = a + b;
    if (!rank.has(merged)) rank.set(merged, r);
  });
  return { score: (token) => -(rank.get(token) ?? merges.length) };
}

/**
 * Refuses merges llama.cpp would not reproduce: it joins any two adjacent pieces whose
 * concatenation is in the vocabulary, so every split of a vocabulary piece into two vocabulary
 * pieces must be a listed merge (HF's SentencePiece converter lists them all).
 */
export function checkMergesComplete(
  vocab: Record<string, number>,
  merges: readonly (string | readonly string[])[],
  skip: (piece: string) => boolean,
  path: string,
): void {
  const listed = new Set(merges.map((m) => (typeof m === "string" ? m : m.join(" "))));
  for (const piece of Object.keys(vocab)) {
    if (skip(piece)) continue;
    for (let i = 1; i < piece.length; i++) {
      const [l, r] = [piece.slice(0, i), piece.slice(i)];
      if (vocab[l] !== undefined && vocab[r] !== undefined && !listed.has(`${l} ${r}`))
        throw new ConfigError(
          `${path}: ${JSON.stringify(piece)} splits into the pieces ${JSON.stringify(l)} + ${JSON.stringify(r)}, which are not a listed merge; llama.cpp would join them and tokenise differently. ` +
            `List every split as a merge (as HF's SentencePiece converter does), or convert with llama.cpp's convert_hf_to_gguf.py`,
        );
    }
  }
}

/** Checks llama.cpp needs: every byte has its `<0xNN>` token (its byte fallback aborts on a missing one). */
export function checkByteTokens(vocab: Record<string, number>, path: string): void {
  const missing = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`).filter((t) => vocab[t] === undefined);
  if (missing.length > 0)
    throw new ConfigError(
      `${path}: a byte-fallback tokenizer without the byte tokens ${missing.slice(0, 4).join(", ")}${missing.length > 4 ? ` (and ${missing.length - 4} more)` : ""}; llama.cpp needs all 256 <0xNN> tokens. Add them to the vocabulary, or convert with llama.cpp's convert_hf_to_gguf.py`,
    );
}

export const isByteToken = (t: string): boolean => BYTE_TOKEN.test(t);
