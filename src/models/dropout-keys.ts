/**
 * The key of every dropout site, shared by all families. A key seeds its site's mask (added to
 * the run's dropout seed) and names it when masks are fed ("dropout_mask.<key>"), so a resumed
 * run replays the masks of the run it continues only while a key keeps its meaning: a family
 * takes its keys from here and never numbers sites itself.
 */
export const DROPOUT_KEYS = {
  /** After the embeddings (token + position, or patches + position). */
  embeddings: 0,
  /** The attention probabilities of layer l. */
  attention: (layer: number) => 1000 + layer,
  /** The attention block's output projection of layer l. */
  attentionOutput: (layer: number) => 2000 + layer,
  /** The MLP's output of layer l. */
  mlpOutput: (layer: number) => 3000 + layer,
  /** The classification head's i-th dropout (RoBERTa's head has two). */
  head: (i: number) => 4000 + i,
} as const;
