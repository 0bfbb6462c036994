/** ViT configuration as HuggingFace's ViTConfig stores it; every field comes from config.json. */
import { ConfigError } from "../../errors.ts";
import { ConfigReader } from "../config-fields.ts";
import { type EncoderConfig, parseEncoderFields } from "../encoder-config.ts";

export interface ViTConfig extends EncoderConfig {
  imageSize: number;
  patchSize: number;
  numChannels: number;
  qkvBias: boolean;
}

export function parseViTConfig(raw: Record<string, unknown>, source: string): ViTConfig {
  const r = new ConfigReader(raw, source);
  const cfg: ViTConfig = {
    ...parseEncoderFields(r, source, 0),
    imageSize: r.int("image_size"),
    patchSize: r.int("patch_size"),
    numChannels: r.int("num_channels", 3),
    qkvBias: r.bool("qkv_bias", true),
  };
  if (cfg.imageSize % cfg.patchSize !== 0) {
    throw new ConfigError(`${source}: image_size ${cfg.imageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  }
  return cfg;
}
