// A stage's adapter (SFT, GRPO) with its defaults filled in.
import type { AdapterSpec } from '@temper/proto';

const allLinear = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export interface AdapterSettings {
  kind: 'lora' | 'rslora' | 'dora' | 'none';
  rank: number;
  alpha: number;
  targetModules: string[];
  useRslora: boolean;
  useDora: boolean;
  merge: boolean;
  /** What the frozen base is held in while the adapters train (the engine's precision). */
  basePrecision: 'fp32' | 'bf16';
}

/** The adapter with defaults: LoRA rank 8, alpha 16, all linear layers. "rslora" and "dora" imply their flag. */
export function adapterSettings(a: AdapterSpec | undefined, field: string): AdapterSettings {
  const kind = (a?.kind || 'lora').toLowerCase();
  if (!['lora', 'rslora', 'dora', 'none'].includes(kind)) throw new Error(`${field}.kind: "${a?.kind}" is not one of lora, rslora, dora, none`);
  const rank = a?.rank || 8;
  const basePrecision = a?.basePrecision || 'fp32';
  if (basePrecision !== 'fp32' && basePrecision !== 'bf16') throw new Error(`${field}.base_precision: "${basePrecision}" is not one of fp32, bf16`);
  if (basePrecision === 'bf16' && kind === 'none') {
    throw new Error(`${field}.base_precision: "bf16" holds a frozen base in bf16 while adapters train; kind "none" trains every weight (a full fine-tune keeps fp32 weights)`);
  }
  return {
    kind: kind as AdapterSettings['kind'],
    rank,
    alpha: a?.alpha || 2 * rank,
    targetModules: a?.targetModules.length ? [...a.targetModules] : allLinear,
    useRslora: kind === 'rslora' || !!a?.useRslora,
    useDora: kind === 'dora',
    merge: kind === 'none' || !!a?.mergeOnExport,
    basePrecision,
  };
}
