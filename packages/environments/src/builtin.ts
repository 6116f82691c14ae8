// The built-in environments:
// - countdown: the task's countdown problem; the model may check candidate expressions with
//   the calculator before it answers in <answer></answer>; reward part "solved";
// - guess_number: guess a hidden number, answered "higher" or "lower" after each guess until it
//   is found; reward part "solved";
// - tool_use: the task's prompt with the listed tools, over when a turn calls none; no reward
//   parts of its own (the run's reward components score the conversation).
import { parseCompletion, parseCountdownProblem, verifyCountdown } from '@temper/data';
import type { ChatMessage } from '@temper/tokenizers';
import { OptionReader, type Options } from './options';
import { runToolCalls, type Tool } from './tools';
import type { AssistantTurn, Environment, EnvironmentTask, StepResult, ToolSchema } from './types';

/** An environment where tool calls are answered by the tools and a turn without one is final. */
abstract class ToolEnvironment implements Environment {
  constructor(protected readonly toolList: readonly Tool[]) {}

  abstract reset(task: EnvironmentTask): ChatMessage[];
  /** The reward parts of the final turn (one that calls no tool). */
  protected abstract finish(turn: AssistantTurn): Record<string, number>;

  tools(): ToolSchema[] {
    return this.toolList.map((t) => t.schema);
  }

  async step(turn: AssistantTurn): Promise<StepResult> {
    if (turn.toolCalls.length === 0 && turn.toolCallErrors.length === 0) return { observations: [], rewards: this.finish(turn), done: true };
    const { observations, outcomes } = await runToolCalls(turn, this.toolList);
    return { observations, done: false, tools: outcomes };
  }
}

class CountdownEnvironment extends ToolEnvironment {
  private problem?: { numbers: number[]; target: number };

  constructor(
    tools: readonly Tool[],
    private readonly mustUseAll: boolean,
  ) {
    super(tools);
  }

  reset(task: EnvironmentTask): ChatMessage[] {
    const p = parseCountdownProblem(task.reference);
    if (!p) throw new Error(`countdown: the task's reference answer ${JSON.stringify(task.reference)} is not a countdown problem ("3,4=7") or solution ("3+4")`);
    this.problem = p;
    return [{ role: 'user', content: task.prompt }];
  }

  protected finish(turn: AssistantTurn): Record<string, number> {
    const answer = parseCompletion(turn.text).answer;
    const ok = answer !== null && verifyCountdown(answer, this.problem!.numbers, this.problem!.target, { mustUseAll: this.mustUseAll }).ok;
    return { solved: ok ? 1 : 0 };
  }
}

class ToolUseEnvironment extends ToolEnvironment {
  reset(task: EnvironmentTask): ChatMessage[] {
    return [{ role: 'user', content: task.prompt }];
  }

  protected finish(): Record<string, number> {
    return {};
  }
}

class GuessNumberEnvironment implements Environment {
  private secret = 0;

  constructor(
    private readonly low: number,
    private readonly high: number,
  ) {}

  tools(): ToolSchema[] {
    return [];
  }

  reset(task: EnvironmentTask): ChatMessage[] {
    // The task's answer when it is a number in range (a dataset of secrets), else one drawn from the seed.
    const ref = Number(task.reference.trim());
    const span = this.high - this.low + 1;
    this.secret = Number.isInteger(ref) && ref >= this.low && ref <= this.high && task.reference.trim() !== '' ? ref : this.low + (mix(task.seed) % span);
    return [{ role: 'user', content: `Guess my number from ${this.low} to ${this.high}. Put each guess in <answer></answer>.` }];
  }

  step(turn: AssistantTurn): StepResult {
    const answer = parseCompletion(turn.text).answer?.trim() ?? '';
    const guess = /^-?\d+$/.test(answer) ? Number(answer) : NaN;
    if (Number.isNaN(guess)) return { observations: [{ role: 'user', content: 'Give a whole number in <answer></answer>.' }], done: false };
    if (guess === this.secret) return { observations: [], rewards: { solved: 1 }, done: true };
    return { observations: [{ role: 'user', content: guess < this.secret ? 'higher' : 'lower' }], done: false };
  }
}

// A 32-bit integer hash (so neighbouring seeds give unrelated secrets).
function mix(seed: number): number {
  let h = (seed ^ (seed / 2 ** 32)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface EnvironmentFactory {
  /** Checks the options once (errors name the field); the result makes one environment per conversation. */
  prepare(options: Options, tools: readonly Tool[], field: string): () => Environment;
  description: string;
}

export const builtinEnvironments: Readonly<Record<string, EnvironmentFactory>> = {
  countdown: {
    description: 'the countdown task; the calculator may check candidate expressions before the <answer>; reward part "solved"',
    prepare(options, tools, field) {
      const o = new OptionReader(options, field);
      const mustUseAll = o.boolean('must_use_all', true);
      o.done();
      return () => new CountdownEnvironment(tools, mustUseAll);
    },
  },
  guess_number: {
    description: 'guess a hidden number with "higher"/"lower" replies; reward part "solved"',
    prepare(options, _tools, field) {
      const o = new OptionReader(options, field);
      const low = o.integer('low', 1, -1e9, 1e9);
      const high = o.integer('high', 100, -1e9, 1e9);
      o.done();
      if (high < low) throw new Error(`${field}.high: (${high}) must not be below low (${low})`);
      return () => new GuessNumberEnvironment(low, high);
    },
  },
  tool_use: {
    description: "the task's prompt with the listed tools, over at the first turn that calls none; no reward parts of its own",
    prepare(options, tools, field) {
      new OptionReader(options, field).done();
      return () => new ToolUseEnvironment(tools);
    },
  },
};
