// Reward specs as files (YAML or JSON, since JSON is YAML): either the spec itself
// ({ components: [...] }), a bare list of components, or a run spec's `rewards` /
// `reward` section. A missing weight means 1 here, where people write specs by hand.
import { parse } from 'yaml';
import { RewardSpecError } from './errors';
import { RewardSpecInput } from './spec';

export function parseRewardSpecText(text: string, source = 'spec'): RewardSpecInput {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RewardSpecError(source, `not valid YAML: ${(err as Error).message}`);
  }
  let path = source;
  if (isRecord(doc) && !('components' in doc)) {
    const key = 'rewards' in doc ? 'rewards' : 'reward' in doc ? 'reward' : null;
    if (key) {
      doc = doc[key];
      path = `${source}.${key}`;
    }
  }
  const list = Array.isArray(doc) ? doc : isRecord(doc) ? doc.components : undefined;
  const listPath = Array.isArray(doc) ? path : `${path}.components`;
  if (!Array.isArray(list)) throw new RewardSpecError(listPath, 'expected a list of reward components');
  return {
    components: list.map((c, i) => {
      if (!isRecord(c)) throw new RewardSpecError(`${listPath}[${i}]`, 'expected a component { name, weight, options }');
      return { name: c.name as string, weight: c.weight === undefined ? 1 : (c.weight as number), options: c.options as Record<string, unknown> | undefined };
    }),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
