// The environment interface: what a multi-turn rollout talks to. An environment is told the
// task, gives the conversation's first messages, then answers each assistant turn with
// observation messages (tool results, feedback), reward parts and whether the episode is over.
// Everything crossing this boundary is plain data, so an environment can run in a sandbox
// thread and answer through a message port.
import type { ChatMessage } from '@temper/tokenizers';

/** What an episode is about: a prompt and its reference answer, as the learner's task gives them. */
export interface EnvironmentTask {
  prompt: string;
  reference: string;
  /** A number the environment may derive its randomness from (same seed: same episode). */
  seed: number;
}

/** One tool call the model made, parsed from its turn. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/** A tool call that could not be read (bad JSON, no name): the model is told why. */
export interface ToolCallError {
  text: string;
  reason: string;
}

/** One assistant turn as the environment sees it: the text and what it asked of the tools. */
export interface AssistantTurn {
  text: string;
  toolCalls: ToolCall[];
  toolCallErrors: ToolCallError[];
  /** The turn was cut by the token limit rather than ended by the model. */
  truncated: boolean;
}

/** How one tool call went, for the report's tool-call success rate. */
export interface ToolOutcome {
  name: string;
  ok: boolean;
}

export interface StepResult {
  /** Messages appended to the conversation (role "tool" for tool results, "user" for feedback). */
  observations: ChatMessage[];
  /** Named reward parts earned this step; a rollout's parts add up over its steps. */
  rewards?: Record<string, number>;
  /** The episode is over: no further turn is sampled. */
  done: boolean;
  /** One entry per tool call of the turn (parse errors count as failed calls). */
  tools?: ToolOutcome[];
}

/** A tool's description as chat templates take it (OpenAI / Hermes function schema). */
export interface ToolSchema {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface Environment {
  /** The conversation's first messages (the task as the user's turn, possibly a system message). */
  reset(task: EnvironmentTask): Promise<ChatMessage[]> | ChatMessage[];
  /** The environment's answer to one assistant turn. */
  step(turn: AssistantTurn): Promise<StepResult> | StepResult;
  /** The tools the model may call, for the chat template's tool list (none: no tools). */
  tools(): ToolSchema[];
  /** Called once when the conversation is over (a sandboxed environment frees its interpreter). */
  close?(): void;
}
