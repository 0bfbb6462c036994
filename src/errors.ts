/**
 * Typed errors. Messages state the rule, then the observed value, then a remedy.
 * `internal:` prefixed messages mark broken invariants (bugs), not misuse.
 */

/** Base class so callers (the CLI) can tell user-facing failures from bugs. */
export class TensLoRAError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A shape or dtype does not fit an op, a weight or a file. */
export class ShapeError extends TensLoRAError {}

/** A configuration value is out of its valid range or inconsistent with another. */
export class ConfigError extends TensLoRAError {}

/** A `targetModules` entry matched no module of the model. */
export class TargetNotFoundError extends TensLoRAError {}

/** A file is malformed or does not match what the model expects. */
export class FormatError extends TensLoRAError {}

/** Feeds handed to a compiled graph are missing, extra or mis-shaped. */
export class FeedError extends TensLoRAError {}

/** A disposed session, tensor or step was used. */
export class UseAfterDisposeError extends TensLoRAError {}

/** Input data (a dataset row, an image, a label) is unusable. */
export class DataError extends TensLoRAError {}

/** An image file (or buffer) that does not decode: the one data error a run skips past instead of stopping. */
export class ImageDecodeError extends DataError {}

/** A chat template that does not parse, raises, or breaks a budget; the message names the template and says why. */
export class ChatTemplateError extends ConfigError {}

/** Training hit a non-finite loss. */
export class NonFiniteLossError extends TensLoRAError {}

/** A run stopped on request (a signal) after saving its checkpoint; it continues from there. */
export class RunInterruptedError extends TensLoRAError {}

/** Throw an `internal:` error: an invariant the code itself should guarantee was broken. */
export function internal(message: string): never {
  throw new Error(`internal: ${message}`);
}

/** An op (or one of its gradients) that the IR does not support in this form. */
export class UnsupportedOpError extends TensLoRAError {
  /** Throw this error; usable where an expression is expected. */
  static raise(message: string): never {
    throw new UnsupportedOpError(message);
  }
}
