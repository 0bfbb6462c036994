/**
 * A small RFC 4180 reader: fields separated by a delimiter, optionally enclosed in double quotes;
 * inside quotes, `""` is a literal quote and delimiters and line breaks are data. Records end at
 * CRLF or LF. Every record carries the 1-based line on which it starts, for error messages.
 * (A package would add a dependency for ~50 lines with no speed need: datasets here are small.)
 */
import { DataError } from "../errors.ts";

/** One row of a CSV file, by column name. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** Parse `text` from `file` (named in errors). Blank lines are skipped; a BOM is dropped. */
export function parseCsv(text: string, file: string, delimiter = ","): CsvRecord[] {
  const records: CsvRecord[] = [];
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let field = "";
      if (src[i] === '"') {
        i++;
        for (;;) {
          if (i >= src.length) {
            throw new DataError(
              `A quoted CSV field must end with a closing quote; in ${file} the field opened on ` +
                `line ${start} never closes. Add the missing quote or escape inner quotes as "".`,
            );
          }
          if (src[i] === '"') {
            if (src[i + 1] !== '"') break;
            i++; // "" → "
          }
          if (src[i] === "\n") line++;
          field += src[i++];
        }
        i++; // the closing quote
        if (i < src.length && src[i] !== delimiter && src[i] !== "\n" && src[i] !== "\r") {
          throw new DataError(
            `After a closing quote a CSV field must end; ${file}:${line} has ` + `${JSON.stringify(src[i])} after the quoted text. Quote the whole field.`,
          );
        }
      } else {
        while (i < src.length && src[i] !== delimiter && src[i] !== "\n" && src[i] !== "\r") field += src[i++];
      }
      fields.push(field);
      if (src[i] !== delimiter) break;
      i++;
    }
    if (src[i] === "\r") i++;
    if (src[i] === "\n") i++;
    line++;
    if (!(fields.length === 1 && fields[0] === "")) records.push({ fields, line: start });
  }
  return records;
}
