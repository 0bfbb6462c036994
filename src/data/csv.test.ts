import { test } from "node:test";
import assert from "node:assert/strict";
import { DataError } from "../errors.ts";
import { parseCsv } from "./csv.ts";

const rows = (text: string, delimiter?: string) => parseCsv(text, "t.csv", delimiter).map((r) => [r.line, ...r.fields]);

test("plain and quoted fields, escaped quotes, delimiters and newlines inside quotes", () => {
  const text = 'a,b,c\n1,"x, y",3\n"he said ""hi""",,"two\nlines"\nlast,row,here';
  assert.deepEqual(rows(text), [
    [1, "a", "b", "c"],
    [2, "1", "x, y", "3"],
    [3, 'he said "hi"', "", "two\nlines"],
    [5, "last", "row", "here"],
  ]);
});

test("CRLF endings, a BOM, blank lines and a trailing newline", () => {
  assert.deepEqual(rows("\ufeffa,b\r\n\r\n1,2\r\n"), [
    [1, "a", "b"],
    [3, "1", "2"],
  ]);
});

test("other delimiters", () => {
  assert.deepEqual(rows('x\t"y\tz"\n', "\t"), [[1, "x", "y\tz"]]);
});

test("an unclosed quote or text after a closing quote is a DataError naming file and line", () => {
  assert.throws(
    () => parseCsv('a,b\n1,"open\n2,3\n', "t.csv"),
    (e: Error) => e instanceof DataError && /t\.csv.*line 2/.test(e.message),
  );
  assert.throws(
    () => parseCsv('a,b\n"x"y,2\n', "t.csv"),
    (e: Error) => e instanceof DataError && e.message.includes("t.csv:2"),
  );
});
