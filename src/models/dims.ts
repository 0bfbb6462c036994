/**
 * Names of the free dims of graphs that run at any size, as HF's ONNX exports (optimum) and
 * transformers.js spell them; a cache's key length is their sum.
 */
export const BATCH = "batch_size";
export const SEQ = "sequence_length";
export const PAST = "past_sequence_length";
