/** The RoBERTa family's heads: sequence classification (the default), token classification, and the masked LM that pretrains an encoder. */
import type { FamilyEntry } from "../types.ts";
import { robertaMaskedLm } from "./masked-lm.ts";
import { roberta, robertaTokens } from "./model.ts";

export const robertaFamily: FamilyEntry = {
  modelType: "roberta",
  heads: { "text-classification": roberta, "token-classification": robertaTokens, "masked-lm": robertaMaskedLm },
  onRequest: ["masked-lm"],
};
