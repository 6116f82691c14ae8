// Multi-turn rollouts: every sample of a group is a conversation with its own environment.
// The conversations of a batch take turns together: each engine call samples the next turn of
// every conversation that is ready for one, and each sampled turn goes to its environment on
// its own. A conversation whose environment (or tool) is slow misses the next engine calls,
// not the others: they go on sampling, and it rejoins the call after its answer comes. An
// environment that throws or passes its time limit ends its own conversation with the reason
// (end_reason), and the group is published as usual.
//
// Token layout of a completion: each sampled turn's ids as the engine gave them (loss_mask 1,
// their log-probs), then the chat template's text up to the next generation prompt, encoded
// (loss_mask 0, log-prob 0): the end of the turn, the observations, the next assistant
// opening.
import type { Model } from '@temper/native';
import { Completion, FinishReason, RolloutRequest } from '@temper/proto';
import {
  AssistantTurn,
  checkToolFormat,
  ConversationRenderer,
  DEFAULT_MAX_TURNS,
  DEFAULT_STEP_TIMEOUT_MS,
  Environment,
  parseTurn,
  StepResult,
  ToolSchema,
} from '@temper/environments';
import type { Tokenizer } from '@temper/tokenizers';
import { createHash } from 'node:crypto';
import { stopTokens, toCompletion, type ModelLimits, type Sampling } from './sampling';

/** One rollout request of a multi-turn batch, checked. */
export interface ConversationGroup {
  request: RolloutRequest;
  sampling: Sampling;
  /** Makes the environment of one conversation. */
  makeEnvironment: () => Environment;
  /** The group's seed (its conversations share it: same task, same episode). */
  seed: number;
}

export interface ConversationGroupResult {
  /** The conversation's opening (system, task, tools) through the first generation prompt. */
  prompt: Int32Array;
  completions: Completion[];
}

export interface ConversationPolicy {
  model: Model;
  tokenizer: Tokenizer;
  limits: ModelLimits;
}

interface Conversation {
  group: number;
  sampling: Sampling;
  env?: Environment;
  tools: ToolSchema[];
  renderer: ConversationRenderer;
  prompt: Int32Array;
  tokens: number[];
  logprobs: number[];
  mask: number[];
  /** Tokens after the prompt this conversation may reach. */
  budget: number;
  maxTurns: number;
  timeoutMs: number;
  turns: number;
  toolCalls: number;
  toolCallsFailed: number;
  rewards: Record<string, number>;
  finish: FinishReason;
  endReason: string;
}

class TimeoutError extends Error {}

/** Runs the conversations of `groups` to their ends; one result per group, in order. */
export async function runConversations(p: ConversationPolicy, groups: ConversationGroup[]): Promise<ConversationGroupResult[]> {
  const conversations = (await Promise.all(groups.map((g, i) => openGroup(p, g, i)))).flat();
  const ready = conversations.filter((c) => !c.endReason);
  const answering = new Set<Promise<void>>();
  let wake: () => void = () => undefined;
  let round = 0;
  while (ready.length > 0 || answering.size > 0) {
    if (ready.length === 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    const batch = ready.splice(0, ready.length);
    const sampled = await sampleTurn(p, batch, mixSeed(groups[0].seed, round++));
    batch.forEach((c, i) => {
      const answered = answer(p, c, sampled[i]).then((again) => {
        answering.delete(answered);
        if (again) ready.push(c);
        wake();
      });
      answering.add(answered);
    });
  }
  for (const c of conversations) c.env?.close?.();
  return groups.map((_, gi) => {
    const mine = conversations.filter((c) => c.group === gi);
    return { prompt: mine[0].prompt, completions: mine.map((c) => toWire(p.tokenizer, c)) };
  });
}

/** The group's n conversations, reset: each gets the environment's first messages rendered as its prompt. */
async function openGroup(p: ConversationPolicy, g: ConversationGroup, gi: number): Promise<Conversation[]> {
  const spec = g.request.environment!;
  const renderer = new ConversationRenderer(p.tokenizer, { systemPrompt: g.request.systemPrompt, enableThinking: g.request.enableThinking }, checkToolFormat(spec.toolFormat, 'environment'));
  const timeoutMs = spec.stepTimeoutMs || DEFAULT_STEP_TIMEOUT_MS;
  const maxTurns = spec.maxTurns || DEFAULT_MAX_TURNS;
  const task = { prompt: g.request.prompt?.text ?? '', reference: g.request.reference, seed: g.seed };
  const out: Conversation[] = [];
  let groupPrompt: Int32Array | undefined;
  for (let k = 0; k < g.sampling.n; k++) {
    const c: Conversation = {
      group: gi,
      sampling: g.sampling,
      tools: [],
      renderer,
      prompt: new Int32Array(0),
      tokens: [],
      logprobs: [],
      mask: [],
      budget: 0,
      maxTurns,
      timeoutMs,
      turns: 0,
      toolCalls: 0,
      toolCallsFailed: 0,
      rewards: {},
      finish: FinishReason.FINISH_REASON_STOP,
      endReason: '',
    };
    out.push(c);
    try {
      c.env = g.makeEnvironment();
      const env = c.env;
      const messages = await withTimeout(() => env.reset(task), timeoutMs, 'reset');
      if (!Array.isArray(messages) || messages.length === 0 || !messages.every(isMessage)) throw new Error('reset must return a non-empty list of { role, content } messages');
      c.tools = env.tools();
      const prompt = p.tokenizer.encode(renderer.opening(messages, c.tools));
      // A group is one task: its conversations must open alike, or their advantages compare different prompts.
      if (groupPrompt && !sameIds(groupPrompt, prompt)) throw new Error('reset opened this conversation differently from the first of its group (a group must be one task)');
      groupPrompt ??= prompt;
      c.prompt = prompt;
      c.budget = Math.min(spec.maxTokens || g.sampling.maxNewTokens * maxTurns, p.limits.maxPositions - prompt.length);
      if (c.budget < 1) c.endReason = 'token_budget';
    } catch (err) {
      c.endReason = failure(err, c);
    }
  }
  // Conversations that could not open still need a prompt to stand beside their group's.
  const fallback = groupPrompt ?? p.tokenizer.encode(g.request.prompt?.text || ' ');
  for (const c of out) if (c.prompt.length === 0) c.prompt = fallback;
  return out;
}

/** One engine call: the next turn of every conversation in `batch`, each cut to its own limits. */
async function sampleTurn(p: ConversationPolicy, batch: Conversation[], seed: number): Promise<Completion[]> {
  const limits = batch.map((c) => Math.min(c.sampling.maxNewTokens, c.budget - c.tokens.length));
  const s = batch[0].sampling;
  const engine = await p.model.generate({
    prompts: batch.map((c) => Int32Array.from([...c.prompt, ...c.tokens])),
    maxNewTokens: Math.max(...limits),
    temperature: s.temperature,
    topP: s.topP,
    topK: s.topK,
    stopTokens: stopTokens(s, p.tokenizer),
    seed,
    n: 1,
  });
  return engine.map((x, i) => toCompletion(x, p.tokenizer, limits[i], batch[i].sampling.stopStrings));
}

/**
 * Appends a sampled turn and hands it to the environment; appends its answer when the
 * conversation goes on. Resolves true when the conversation wants another turn.
 */
async function answer(p: ConversationPolicy, c: Conversation, turn: Completion): Promise<boolean> {
  c.tokens.push(...turn.tokenIds);
  c.logprobs.push(...turn.logprobs);
  c.mask.push(...turn.tokenIds.map(() => 1));
  c.turns++;
  c.finish = turn.finishReason;
  const truncated = turn.finishReason === FinishReason.FINISH_REASON_LENGTH;
  const parsed: AssistantTurn = parseTurn(turn.text, c.renderer.format, c.tools, truncated);
  let result: StepResult;
  try {
    const env = c.env!;
    result = await withTimeout(() => env.step(parsed), c.timeoutMs, 'step');
    checkStep(result);
  } catch (err) {
    c.endReason = failure(err, c);
    return false;
  }
  for (const [name, v] of Object.entries(result.rewards ?? {})) c.rewards[name] = (c.rewards[name] ?? 0) + v;
  for (const t of result.tools ?? []) {
    c.toolCalls++;
    if (!t.ok) c.toolCallsFailed++;
  }
  if (result.done) return end(c, 'done');
  if (c.turns >= c.maxTurns) return end(c, 'max_turns');
  const last = turn.tokenIds.at(-1);
  const endedBy = !truncated && last !== undefined && p.tokenizer.stopTokenIds.includes(last) ? last : undefined;
  let observation: Int32Array;
  try {
    observation = p.tokenizer.encode(c.renderer.afterTurn(result.observations, endedBy));
  } catch (err) {
    c.endReason = failure(err, c);
    return false;
  }
  // Room for the observation and at least one more token of the model's.
  if (c.tokens.length + observation.length >= c.budget) return end(c, 'token_budget');
  for (const id of observation) {
    c.tokens.push(id);
    c.logprobs.push(0);
    c.mask.push(0);
  }
  return true;
}

function end(c: Conversation, reason: string): false {
  c.endReason = reason;
  return false;
}

function failure(err: unknown, c: Conversation): string {
  if (err instanceof TimeoutError) return `environment timed out after ${c.timeoutMs} ms (${err.message})`;
  return `environment error: ${err instanceof Error ? err.message : String(err)}`;
}

function toWire(tokenizer: Tokenizer, c: Conversation): Completion {
  return Completion.fromPartial({
    text: tokenizer.decode(c.tokens, { skipSpecialTokens: true }),
    tokenIds: c.tokens,
    logprobs: c.logprobs,
    finishReason: c.finish,
    lossMask: c.mask,
    turns: c.turns,
    toolCalls: c.toolCalls,
    toolCallsFailed: c.toolCallsFailed,
    endReason: c.endReason,
    environmentRewards: c.rewards,
  });
}

/** An environment's answer in the shape promised, or an error saying what is wrong with it. */
function checkStep(r: StepResult): void {
  if (!r || typeof r !== 'object') throw new Error('step must return { observations, done, rewards? }');
  if (typeof r.done !== 'boolean') throw new Error('step returned no boolean "done"');
  if (!Array.isArray(r.observations) || !r.observations.every(isMessage)) throw new Error('step returned "observations" that are not a list of { role, content } messages');
  for (const [k, v] of Object.entries(r.rewards ?? {})) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`step returned reward part "${k}" that is not a finite number`);
  }
}

function isMessage(m: unknown): boolean {
  return !!m && typeof (m as { role?: unknown }).role === 'string' && typeof (m as { content?: unknown }).content === 'string';
}

async function withTimeout<T>(call: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(call),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(what)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sameIds(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A distinct engine seed for each round of a batch, derived from its lead group's. */
function mixSeed(seed: number, round: number): number {
  return createHash('sha256').update(`${seed}\u0000${round}`).digest().readUIntBE(0, 6);
}
