import { checkDocument, DocumentError, RunSpec, ScheduleKind } from '@temper/proto';

function problems(doc: unknown): string[] {
  try {
    checkDocument('temper.v1.RunSpec', doc);
  } catch (err) {
    if (err instanceof DocumentError) return err.problems;
    throw err;
  }
  return [];
}

describe('checkDocument', () => {
  it('accepts a well-formed spec in proto or JSON field names and reads it into the message', () => {
    const doc = checkDocument('temper.v1.RunSpec', {
      name: 'demo',
      seed: 7,
      model: { tokenizer: 'bytes', config: { hidden_size: 64, tie_word_embeddings: true } },
      stages: [
        { name: 'sft', sft: { adapter: { kind: 'dora', rank: 8, use_rslora: true, target_modules: ['q_proj', 'v_proj'] } } },
        { name: 'grpo', grpo: { groupSize: 8, advantage: 'DR_GRPO', schedule: { kind: 'cosine', warmup_steps: 5 } } },
      ],
      labels: { owner: 'me' },
    });
    const spec = RunSpec.fromJSON(doc);
    expect(spec.model?.config).toEqual({ hidden_size: 64, tie_word_embeddings: true });
    const grpo = spec.stages[1].kind;
    expect(grpo?.$case).toBe('grpo');
    if (grpo?.$case === 'grpo') {
      expect(grpo.value.groupSize).toBe(8);
      expect(grpo.value.schedule?.kind).toBe(ScheduleKind.SCHEDULE_KIND_COSINE);
    }
    expect(spec.stages[0].kind?.$case === 'sft' && spec.stages[0].kind.value.adapter?.useRslora).toBe(true);
  });

  it('names every problem with its path', () => {
    expect(
      problems({
        name: 3,
        stages: [{ grpo: { steps: -1, group_size: 2.5, advantage: 'ppo', kl_beta: 'high', bogus: true } }, 'sft'],
        labels: { a: 1 },
        model: [],
      }),
    ).toEqual([
      'name: expected a string, got 3',
      'stages[0].grpo.steps: expected an integer >= 0, got -1',
      'stages[0].grpo.group_size: expected an integer >= 0, got 2.5',
      'stages[0].grpo.advantage: expected one of grpo, dr_grpo, rloo, batch_std, got "ppo"',
      'stages[0].grpo.kl_beta: expected a number, got "high"',
      expect.stringMatching(/^stages\[0\]\.grpo\.bogus: unknown field of GrpoStage \(known: task, steps, /),
      'stages[1]: expected a mapping with fields of StageSpec, got "sft"',
      'labels.a: expected a string, got 1',
      'model: expected a mapping with fields of ModelSpec, got a list',
    ]);
  });

  it('allows one member of a oneof only', () => {
    expect(problems({ stages: [{ sft: {}, grpo: {} }] })).toEqual(['stages[0].grpo: only one of midtrain / sft / grpo / eval may be set (sft is too)']);
  });

  it('refuses a document that is not a mapping', () => {
    expect(problems('name: x')).toEqual(['(root): expected a mapping with fields of RunSpec, got "name: x"']);
  });
});
