/**
 * A 64-bit structural hash (two 32-bit FNV-1a lanes with different offsets, one also mixing the
 * position) for naming cached sessions and refusing mismatched checkpoints. Not cryptographic:
 * node:crypto is not in the browser and Web Crypto's digest is asynchronous.
 */
export class Hasher {
  #a = 0x811c9dc5;
  #b = 0x01000193 ^ 0x9e3779b9;
  #n = 0;

  update(input: string | Uint8Array): this {
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    let a = this.#a;
    let b = this.#b;
    let n = this.#n;
    for (let i = 0; i < bytes.length; i++, n++) {
      a = Math.imul(a ^ bytes[i], 0x01000193);
      b = Math.imul(b ^ bytes[i] ^ (n & 0xff), 0x01000193) ^ (b >>> 15);
    }
    this.#a = a;
    this.#b = b;
    this.#n = n;
    return this;
  }

  /** 16 hex digits. */
  digest(): string {
    return (this.#a >>> 0).toString(16).padStart(8, "0") + (this.#b >>> 0).toString(16).padStart(8, "0");
  }
}

export const hashOf = (s: string): string => new Hasher().update(s).digest();
