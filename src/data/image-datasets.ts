/**
 * Image datasets kept on disk: a class-per-folder tree (EuroSAT, torchvision ImageFolder) and
 * the DTD layout. Items hold paths; pixels are decoded per batch by the loader.
 *
 * Every candidate file is opened once at load time (by default only its header) so that an
 * unreadable file is skipped with one warning before training instead of failing a batch later.
 */
import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { ConfigError, DataError } from "../errors.ts";
import { checkDataset, warnSkipped } from "./dataset-checks.ts";
import { readDir, readText } from "./files.ts";
import { randomSubset, splitDataset, type SplitOptions } from "./split.ts";
import type { ImageDataset, SkippedFile, Split, WarnFn } from "./types.ts";

/** torchvision's IMG_EXTENSIONS; files with other extensions (and dotfiles) are ignored silently. */
const IMAGE_EXTENSIONS = new Set([".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]);

/** Options common to the image dataset readers. */
export interface ImageLoadOptions {
  /**
   * How hard to check each file before accepting it: "header" (fast, catches non-images and
   * missing files), "decode" (the default: full decode, also catches truncated files, so no
   * bad image reaches a training step), or "none".
   */
  verify?: "header" | "decode" | "none";
  warn?: WarnFn;
}

/**
 * A folder with one subfolder per class (`root/<class>/*.jpg`), classes in sorted order as in
 * torchvision's ImageFolder. An empty class folder or fewer than 2 classes is a DataError.
 */
export async function loadImageFolder(root: string, opts: ImageLoadOptions = {}): Promise<ImageDataset> {
  const classNames = listDirs(root);
  const candidates: Candidate[] = [];
  classNames.forEach((name, label) => {
    const files = listImages(join(root, name));
    if (files.length === 0) {
      throw new DataError(
        `Every class folder must hold at least one image (${[...IMAGE_EXTENSIONS].join(", ")}); ` +
          `${join(root, name)} has none. Remove the folder or add its images.`,
      );
    }
    for (const f of files) candidates.push({ path: join(root, name, f), label });
  });
  const ds = await verified(candidates, classNames, root, opts);
  const counts = new Array<number>(classNames.length).fill(0);
  for (const item of ds.items) counts[item.label]++;
  const emptied = classNames.filter((_, c) => counts[c] === 0);
  if (emptied.length > 0) {
    throw new DataError(
      `Every class needs at least one readable image; in ${root}, all files of ` +
        `${emptied.join(", ")} were skipped (see the warning). Fix or remove those files.`,
    );
  }
  return ds;
}

/** `loadImageFolder` then `splitDataset`: the paper's EuroSAT protocol (random 80/20). */
export async function loadImageFolderSplit(root: string, opts: ImageLoadOptions & SplitOptions = {}): Promise<Split<ImageDataset>> {
  return splitDataset(await loadImageFolder(root, opts), opts);
}

/** Options for the Describable Textures Dataset: which of its ten official splits to use. */
export interface DtdOptions extends ImageLoadOptions {
  /** Which of DTD's ten official partitions (`labels/train<k>.txt`); torchvision's default is 1. */
  partition?: number;
  /** Keep a seeded random subset of this many train images (the paper uses 1000). */
  trainSubset?: number;
  seed?: number;
}

/**
 * DTD as distributed: `images/<class>/*.jpg` and `labels/{train,test}<k>.txt` listing
 * `class/file.jpg` per line. Classes are the sorted subfolders of `images/`.
 */
export async function loadDtd(root: string, opts: DtdOptions = {}): Promise<Split<ImageDataset>> {
  const k = opts.partition ?? 1;
  if (!Number.isInteger(k) || k < 1 || k > 10) {
    throw new ConfigError(`DTD partition must be an integer in 1..10; got ${k}.`);
  }
  const classNames = listDirs(join(root, "images"));
  const load = async (split: string) => {
    const listFile = join(root, "labels", `${split}${k}.txt`);
    return verified(readDtdList(listFile, root, classNames), classNames, listFile, opts);
  };
  const train = await load("train");
  const test = await load("test");
  return { train: opts.trainSubset === undefined ? train : randomSubset(train, opts.trainSubset, opts.seed), test };
}

interface Candidate {
  path: string;
  label: number;
}

function readDtdList(listFile: string, root: string, classNames: string[]): Candidate[] {
  const out: Candidate[] = [];
  readText(listFile)
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "") return;
      const label = classNames.indexOf(line.split("/")[0]);
      if (label < 0 || !line.includes("/")) {
        throw new DataError(
          `Each DTD list line must read "<class>/<file>" with a class folder under images/; ` +
            `${listFile}:${i + 1} reads "${line}". Check that images/ and labels/ match.`,
        );
      }
      out.push({ path: join(root, "images", line), label });
    });
  return out;
}

/** Open every candidate (bounded concurrency), drop the unreadable ones, warn once, check. */
async function verified(candidates: Candidate[], classNames: string[], source: string, opts: ImageLoadOptions): Promise<ImageDataset> {
  const mode = opts.verify ?? "decode";
  const failures = new Array<string | null>(candidates.length).fill(null);
  if (mode !== "none") {
    let next = 0;
    const worker = async () => {
      while (next < candidates.length) {
        const i = next++;
        failures[i] = await probe(candidates[i].path, mode);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }
  const skipped: SkippedFile[] = [];
  const items = candidates.filter((c, i) => {
    const reason = failures[i];
    if (reason !== null) skipped.push({ path: c.path, reason });
    return reason === null;
  });
  warnSkipped(skipped, source, opts.warn ?? console.warn);
  const ds: ImageDataset = { kind: "image", items, classNames, skipped };
  checkDataset(ds, source);
  return ds;
}

/** null when the file opens as an image, else the reason. Only regular files are opened: a FIFO or a device named x.png would block the read forever. */
async function probe(path: string, mode: "header" | "decode"): Promise<string | null> {
  try {
    const st = await stat(path);
    if (!st.isFile())
      return `not a regular file (${st.isFIFO() ? "a FIFO" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : st.isSocket() ? "a socket" : "a folder"})`;
    if (mode === "header") await sharp(path).metadata();
    else await sharp(path).raw().toBuffer();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

function listDirs(dir: string): string[] {
  const names = readDir(dir).filter((n) => !n.startsWith(".") && statSync(join(dir, n)).isDirectory());
  if (names.length < 2) {
    throw new DataError(
      `An image classification folder needs at least 2 class subfolders; ${dir} has ` +
        `${names.length} (${names.join(", ") || "none"}). Point at the folder that holds the class folders.`,
    );
  }
  return names.sort();
}

function listImages(dir: string): string[] {
  return readDir(dir)
    .filter((n) => !n.startsWith(".") && IMAGE_EXTENSIONS.has(n.slice(n.lastIndexOf(".")).toLowerCase()))
    .sort();
}
