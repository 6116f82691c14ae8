import * as path from 'node:path';
import {
  compileRewardSpec,
  createRegistry,
  defaultRewardSpec,
  loadRewardPlugins,
  parseRewardSpecText,
  RewardComponent,
  RewardSpecError,
} from '@temper/rewards';

const good = '<think>6 times 7</think><answer>42</answer>';

describe('reward spec', () => {
  it('defaults to accuracy and format', () => {
    for (const spec of [undefined, null, { components: [] }]) {
      const r = compileRewardSpec(spec).score({ completion: good, reference: '42' });
      expect(Object.keys(r.components)).toEqual(['accuracy', 'format']);
      expect(r.total).toBeCloseTo(1 + defaultRewardSpec.components[1].weight);
    }
  });

  it('totals weight × raw value and reports every raw value', () => {
    const spec = compileRewardSpec({
      components: [
        { name: 'accuracy', weight: 2 },
        { name: 'format', weight: 0.25 },
        { name: 'repetition', weight: 0 },
        { name: 'length', weight: -1, options: { maxLength: 100 } },
      ],
    });
    const r = spec.score({ completion: '<answer>42</answer>', reference: '42', completionTokens: 50 });
    expect(r.components).toEqual({ accuracy: 1, format: 0, repetition: 0, length: expect.closeTo(0.75) });
    expect(r.total).toBeCloseTo(2 * 1 + 0.25 * 0 - 0.75);
    expect(spec.names()).toEqual(['accuracy', 'format', 'repetition', 'length']);
  });

  it('lets length shaping use the accuracy options of the spec', () => {
    const spec = (tol: number) =>
      compileRewardSpec({ components: [{ name: 'accuracy', weight: 0, options: { relTolerance: tol } }, { name: 'length', weight: 1, options: { maxLength: 10 } }] });
    const item = { completion: '<answer>3.14</answer>', reference: '\\pi', completionTokens: 10 };
    expect(spec(1e-6).score(item).components.length).toBeCloseTo(-0.5);
    expect(spec(1e-2).score(item).components.length).toBeCloseTo(0.5);
  });

  it('refuses bad specs, naming the field', () => {
    const err = (spec: unknown) => {
      try {
        compileRewardSpec(spec as never);
      } catch (e) {
        expect(e).toBeInstanceOf(RewardSpecError);
        return (e as RewardSpecError).field;
      }
      throw new Error('no error');
    };
    expect(err({ components: [{ name: 'accuracy', weight: 1 }, { name: 'nope', weight: 1 }] })).toBe('spec.components[1].name');
    expect(err({ components: [{ name: '', weight: 1 }] })).toBe('spec.components[0].name');
    expect(err({ components: [{ name: 'accuracy', weight: 1 }, { name: 'accuracy', weight: 2 }] })).toBe('spec.components[1].name');
    expect(err({ components: [{ name: 'format', weight: NaN }] })).toBe('spec.components[0].weight');
    expect(err({ components: [{ name: 'format', weight: '1' }] })).toBe('spec.components[0].weight');
    expect(err({ components: [{ name: 'format', weight: 1, options: [1] }] })).toBe('spec.components[0].options');
    expect(err({ components: [{ name: 'format', weight: 1, options: { partialCredit: true } }] })).toBe('spec.components[0].options.partialCredit');
    expect(err({ components: 'accuracy' })).toBe('spec.components');
    expect(err({ components: [null] })).toBe('spec.components[0]');
  });

  it('cuts very long completions, flags them, and still scores', () => {
    const spec = compileRewardSpec(undefined, { maxCompletionChars: 1000 });
    const long = '<think>' + 'x'.repeat(5000) + '</think><answer>42</answer>';
    const r = spec.score({ completion: long, reference: '42' });
    expect(r.truncated).toBe(true);
    expect(r.flags).toContain('truncated');
    expect(r.components.accuracy).toBe(0);
    const huge = compileRewardSpec().score({ completion: '<answer>' + '('.repeat(200000) + '</answer>', reference: '42' });
    expect(huge.truncated).toBe(true);
    expect(huge.total).toBe(0);
    const fine = spec.score({ completion: good, reference: '42' });
    expect(fine.truncated).toBe(false);
  });

  it('registers custom components by name, with their options', () => {
    const registry = createRegistry();
    const shortAnswer: RewardComponent<{ limit: number }> = {
      name: 'short_answer',
      description: 'Answers of at most `limit` characters.',
      options: { limit: { type: 'number', default: 3, min: 1, description: 'Longest answer.' } },
      prepare: (o) => ({ limit: o.limit as number }),
      score: (_input, s, ctx) => (ctx.verdict().answer.length <= s.limit ? 1 : 0),
    };
    registry.register(shortAnswer);
    const spec = compileRewardSpec({ components: [{ name: 'short_answer', weight: 1, options: { limit: 2 } }] }, { registry });
    expect(spec.score({ completion: '<answer>42</answer>', reference: '42' }).components.short_answer).toBe(1);
    expect(spec.score({ completion: '<answer>420</answer>', reference: '42' }).components.short_answer).toBe(0);
    expect(() => compileRewardSpec({ components: [{ name: 'short_answer', weight: 1 }] })).toThrow('unknown reward component');
    expect(() => registry.register(shortAnswer)).toThrow('already registered');
    expect(() => registry.register({ ...shortAnswer, name: 'Bad Name' })).toThrow('must be lower case');
  });

  it('contains a custom component that throws or returns junk', () => {
    const registry = createRegistry();
    registry.register({ name: 'throws', description: '', options: {}, score: () => { throw new Error('boom'); } });
    registry.register({ name: 'nan', description: '', options: {}, score: () => NaN });
    const spec = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1 }, { name: 'throws', weight: 1 }, { name: 'nan', weight: 1 }] }, { registry });
    const r = spec.score({ completion: '<answer>1</answer>', reference: '1' });
    expect(r.total).toBe(1);
    expect(r.components).toEqual({ accuracy: 1, throws: 0, nan: 0 });
    expect(r.flags).toEqual(['throws_failed', 'nan_not_finite']);
  });

  it('loads plugin modules', () => {
    const registry = createRegistry();
    expect(loadRewardPlugins([path.join(__dirname, 'fixtures', 'plugin.js')], registry)).toEqual(['mentions_units']);
    const spec = compileRewardSpec({ components: [{ name: 'mentions_units', weight: 1, options: { unit: 'kg' } }] }, { registry });
    expect(spec.score({ completion: '5 kg', reference: '' }).components.mentions_units).toBe(1);
    expect(() => loadRewardPlugins([path.join(__dirname, 'fixtures', 'no-components-plugin.js')], createRegistry())).toThrow('exports no components');
  });
});

describe('reward spec files', () => {
  it('reads YAML with default weights, and a run spec\'s rewards section', () => {
    expect(parseRewardSpecText('components:\n  - name: accuracy\n  - name: format\n    weight: 0.2\n    options: { partialCredit: 0.5 }\n')).toEqual({
      components: [
        { name: 'accuracy', weight: 1, options: undefined },
        { name: 'format', weight: 0.2, options: { partialCredit: 0.5 } },
      ],
    });
    expect(parseRewardSpecText('- name: accuracy\n').components).toHaveLength(1);
    expect(parseRewardSpecText('model: x\nrewards:\n  components:\n    - name: format\n').components[0].name).toBe('format');
    expect(parseRewardSpecText('{"components": [{"name": "accuracy", "weight": 3}]}').components[0].weight).toBe(3);
  });

  it('names what is wrong', () => {
    expect(() => parseRewardSpecText('components: 3', 'rewards.yaml')).toThrow('rewards.yaml.components: expected a list');
    expect(() => parseRewardSpecText('components:\n  - 3\n', 'rewards.yaml')).toThrow('rewards.yaml.components[0]');
    expect(() => parseRewardSpecText('a: [', 'rewards.yaml')).toThrow('rewards.yaml: not valid YAML');
    const spec = parseRewardSpecText('components:\n  - name: accuracy\n    options: { tolerance: 1 }\n');
    expect(() => compileRewardSpec(spec, { path: 'rewards.yaml' })).toThrow('rewards.yaml.components[0].options.tolerance: unknown option');
  });
});
