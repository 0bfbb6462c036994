/**
 * The shipped labelled text: the UCI sentiment sentences (1,000 per source less the fixtures'
 * empty closing record and repeats) and the SpamAssassin e-mails (6,046 files, 1,896 of them
 * spam, less repeated texts). Splits are disjoint, stratified and reproducible by seed; e-mails
 * lose their headers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SENTIMENT_SOURCES, emailText, sentimentSentences, sentimentSplit, spamAssassinEmails, spamSplit } from "../src/data/labelled-text.ts";

test("sentiment: three sources of about 1,000 balanced sentences, a 70/30 split stratified by source and class, fixed by the seed", () => {
  for (const s of SENTIMENT_SOURCES) {
    const items = sentimentSentences(s);
    assert.ok(items.length > 980 && items.length <= 1000, `${s}: ${items.length}`);
    const pos = items.filter((x) => x.label === 1).length;
    assert.ok(Math.abs(pos / items.length - 0.5) < 0.02, `${s}: ${pos} positive`);
  }
  const a = sentimentSplit(0);
  const train = new Set(a.train.items.map((x) => x.text));
  assert.ok(
    a.test.items.every((x) => !train.has(x.text)),
    "train and test are disjoint",
  );
  const share = a.train.items.length / (a.train.items.length + a.test.items.length);
  assert.ok(Math.abs(share - 0.7) < 0.005, `train share ${share}`);
  assert.deepEqual(sentimentSplit(0).test.items, a.test.items);
  assert.notDeepEqual(sentimentSplit(1).test.items, a.test.items);
  assert.deepEqual(a.train.classNames, ["negative", "positive"]);
});

test("spam: the distinct e-mails, a stratified sample at the corpus's ham/spam ratio, disjoint", () => {
  const all = spamAssassinEmails();
  assert.equal(new Set(all.map((x) => x.text)).size, all.length);
  assert.ok(all.length > 5800 && all.length < 6046, `${all.length} distinct of 6,046 files`);
  const corpusShare = all.filter((x) => x.label === 1).length / all.length;
  assert.ok(Math.abs(corpusShare - 1896 / 6046) < 0.02, `spam share of the distinct e-mails ${corpusShare}`);
  const { train, test: held } = spamSplit(0);
  assert.equal(train.items.length, 1500);
  assert.equal(held.items.length, 1000);
  const spamShare = (xs: { label: number }[]) => xs.filter((x) => x.label === 1).length / xs.length;
  for (const xs of [train.items, held.items]) assert.ok(Math.abs(spamShare(xs) - corpusShare) < 0.005, `spam share ${spamShare(xs)}`);
  const seen = new Set(train.items.map((x) => x.text));
  assert.ok(
    held.items.every((x) => !seen.has(x.text)),
    "no test e-mail is a training e-mail",
  );
});

test("an e-mail keeps its subject and body, without headers or HTML tags", () => {
  const raw = "From: a@b.c\nX-Spam-Status: Yes, hits=9\nSubject: Cheap  offer\nReceived: from x\n\n<html><b>Buy</b>&nbsp;now</html>\n\nBye";
  assert.equal(emailText(raw), "Cheap offer Buy now Bye");
});
