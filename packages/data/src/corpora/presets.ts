// Ready-made mixtures in the spirit of OctoThinker's Stable-then-Decay recipe: a stable phase
// dominated by math web text with some QA and instruction data, then decay branches that
// shift the weight to QA with short chain-of-thought, long chain-of-thought, or both. The
// numbers are starting points for tiny local runs, not values from the paper.
import type { DataSourceSpec } from './sources';

export type PresetMixture = 'stable' | 'short-cot' | 'long-cot' | 'hybrid';

export const presetMixtureNames: readonly PresetMixture[] = ['stable', 'short-cot', 'long-cot', 'hybrid'];

const weights: Record<PresetMixture, Record<string, number>> = {
  stable: { 'web-math': 0.5, 'qa-short-cot': 0.2, 'qa-long-cot': 0.1, instructions: 0.2 },
  'short-cot': { 'web-math': 0.2, 'qa-short-cot': 0.6, instructions: 0.2 },
  'long-cot': { 'web-math': 0.2, 'qa-long-cot': 0.6, instructions: 0.2 },
  hybrid: { 'web-math': 0.2, 'qa-short-cot': 0.3, 'qa-long-cot': 0.3, instructions: 0.2 },
};

/**
 * The sources of a preset mixture; `fields` (e.g. { difficulty: "1,2" }) go to the QA
 * sources, so a tiny model's mid-training can stay at the difficulties it will be tested on.
 */
export function presetMixture(name: PresetMixture, qaFields: Record<string, string> = {}): DataSourceSpec[] {
  const w = weights[name];
  if (!w) throw new Error(`unknown preset mixture "${name}" (known: ${presetMixtureNames.join(', ')})`);
  return Object.entries(w).map(([corpus, weight]) => ({
    name: corpus,
    uri: `builtin:${corpus}`,
    weight,
    fields: corpus.startsWith('qa-') ? { ...qaFields } : {},
  }));
}
