/** Helpers for the data tests: temp folders removed at exit, and small images written by sharp. */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";

/** A fresh folder under the OS temp dir, deleted when the test process exits. */
export function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tenslora-data-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Write a width×height image of one RGB colour (PNG or JPEG by extension), creating folders. */
export async function writeSolidImage(path: string, width: number, height: number, rgb: [number, number, number]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  await (path.endsWith(".png") ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
}
