/** Small images written by sharp, for the data tests. */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import sharp from "sharp";

/** Write a width×height image of one RGB colour (PNG or JPEG by extension), creating folders. */
export async function writeSolidImage(path: string, width: number, height: number, rgb: [number, number, number]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  await (path.endsWith(".png") ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
}
