// Reading tool calls out of an assistant turn, in the format the model's chat template
// teaches it:
// - "hermes": Qwen2.5/Qwen3 and Hermes templates, `<tool_call>{"name": …, "arguments": {…}}</tool_call>`,
//   any number per turn, results going back as "tool" messages the template wraps in
//   <tool_response>;
// - "compact": the built-in format for the byte-tokenizer models, `<tool>name: text</tool>`,
//   where the text is the tool's first parameter (a tiny model cannot afford JSON).
import type { AssistantTurn, ToolCall, ToolCallError, ToolSchema } from './types';

export type ToolCallFormat = 'hermes' | 'compact';

export const toolCallFormats: readonly ToolCallFormat[] = ['hermes', 'compact'];

const MAX_CALLS_PER_TURN = 16;

/** The tool calls (and unreadable attempts) of one assistant turn. */
export function parseTurn(text: string, format: ToolCallFormat, tools: readonly ToolSchema[], truncated = false): AssistantTurn {
  const { calls, errors } = format === 'hermes' ? parseHermes(text) : parseCompact(text, tools);
  if (calls.length > MAX_CALLS_PER_TURN) {
    errors.push({ text: '', reason: `more than ${MAX_CALLS_PER_TURN} tool calls in one turn; the rest were not run` });
    calls.length = MAX_CALLS_PER_TURN;
  }
  return { text, toolCalls: calls, toolCallErrors: errors, truncated };
}

function parseHermes(text: string): { calls: ToolCall[]; errors: ToolCallError[] } {
  const calls: ToolCall[] = [];
  const errors: ToolCallError[] = [];
  const open = '<tool_call>';
  const close = '</tool_call>';
  let at = text.indexOf(open);
  while (at >= 0) {
    const end = text.indexOf(close, at + open.length);
    if (end < 0) {
      errors.push({ text: text.slice(at), reason: 'a <tool_call> that is never closed' });
      break;
    }
    const body = text.slice(at + open.length, end).trim();
    const parsed = readCallJson(body);
    if ('reason' in parsed) errors.push({ text: body, reason: parsed.reason });
    else calls.push(parsed);
    at = text.indexOf(open, end + close.length);
  }
  return { calls, errors };
}

function readCallJson(body: string): ToolCall | { reason: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (err) {
    return { reason: `not JSON (${(err as Error).message})` };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { reason: 'not a JSON object' };
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.length === 0) return { reason: 'no "name"' };
  // Some models write the arguments as a JSON string, as the OpenAI API does.
  let args = o.arguments ?? o.parameters ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return { reason: '"arguments" is a string that is not JSON' };
    }
  }
  if (!args || typeof args !== 'object' || Array.isArray(args)) return { reason: '"arguments" is not an object' };
  return { name: o.name, arguments: args as Record<string, unknown> };
}

function parseCompact(text: string, tools: readonly ToolSchema[]): { calls: ToolCall[]; errors: ToolCallError[] } {
  const calls: ToolCall[] = [];
  const errors: ToolCallError[] = [];
  const re = /<tool>([\s\S]*?)(<\/tool>|$)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0].length === 0) break;
    if (!m[2]) {
      errors.push({ text: m[0], reason: 'a <tool> that is never closed' });
      break;
    }
    const colon = m[1].indexOf(':');
    if (colon < 0) {
      errors.push({ text: m[1], reason: 'expected "name: argument"' });
      continue;
    }
    const name = m[1].slice(0, colon).trim();
    const tool = tools.find((t) => t.function.name === name);
    const param = tool ? firstParameter(tool) : 'input';
    calls.push({ name, arguments: { [param]: m[1].slice(colon + 1).trim() } });
  }
  return { calls, errors };
}

function firstParameter(tool: ToolSchema): string {
  const p = tool.function.parameters as { required?: unknown; properties?: Record<string, unknown> };
  if (Array.isArray(p.required) && typeof p.required[0] === 'string') return p.required[0];
  return Object.keys(p.properties ?? {})[0] ?? 'input';
}

/** A tool call written in `format`, as a model would write it (for prompts that show the format, and tests). */
export function writeToolCall(call: ToolCall, format: ToolCallFormat): string {
  if (format === 'hermes') return `<tool_call>\n${JSON.stringify({ name: call.name, arguments: call.arguments })}\n</tool_call>`;
  const first = Object.values(call.arguments)[0];
  return `<tool>${call.name}: ${String(first ?? '')}</tool>`;
}
