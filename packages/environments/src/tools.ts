// Tools a model may call during a rollout, and running one turn's calls. A tool's answer is
// plain text for the next observation; a tool that fails (bad arguments, an error of its own)
// answers with the error, so the model sees what went wrong and the rollout goes on.
import { CalculatorError, evaluateExpression, formatNumber } from './calculator';
import type { AssistantTurn, ToolOutcome, ToolSchema } from './types';
import type { ChatMessage } from '@temper/tokenizers';

export interface Tool {
  schema: ToolSchema;
  call(args: Record<string, unknown>): string | Promise<string>;
}

/** An error a tool reports to the model (as opposed to a bug, which ends the rollout). */
export class ToolError extends Error {}

export const calculatorTool: Tool = {
  schema: {
    type: 'function',
    function: {
      name: 'calculator',
      description: 'Evaluates an arithmetic expression (numbers, + - * / % ^ and parentheses) and returns its value.',
      parameters: {
        type: 'object',
        properties: { expression: { type: 'string', description: 'The expression, e.g. "(3+5)*7"' } },
        required: ['expression'],
      },
    },
  },
  call(args) {
    const e = args.expression;
    if (typeof e !== 'string') throw new ToolError('"expression" must be a string');
    try {
      return formatNumber(evaluateExpression(e));
    } catch (err) {
      if (err instanceof CalculatorError) throw new ToolError(err.message);
      throw err;
    }
  },
};

export const builtinTools: Readonly<Record<string, Tool>> = { calculator: calculatorTool };

/** The named built-in tools; an unknown name is an error naming `field` and the known ones. */
export function resolveTools(names: readonly string[], field = 'tools'): Tool[] {
  return names.map((n, i) => {
    const t = builtinTools[n];
    if (!t) throw new Error(`${field}[${i}]: unknown tool "${n}" (built-in: ${Object.keys(builtinTools).join(', ')})`);
    return t;
  });
}

/**
 * Runs every call of `turn` in order: one "tool" message per call (its result, or "error: …"
 * for a call that failed or could not be read), and whether each went through.
 */
export async function runToolCalls(turn: AssistantTurn, tools: readonly Tool[]): Promise<{ observations: ChatMessage[]; outcomes: ToolOutcome[] }> {
  const observations: ChatMessage[] = [];
  const outcomes: ToolOutcome[] = [];
  for (const bad of turn.toolCallErrors) {
    observations.push({ role: 'tool', content: `error: ${bad.reason}` });
    outcomes.push({ name: '', ok: false });
  }
  for (const call of turn.toolCalls) {
    const tool = tools.find((t) => t.schema.function.name === call.name);
    if (!tool) {
      observations.push({ role: 'tool', content: `error: no tool named "${call.name}" (tools: ${tools.map((t) => t.schema.function.name).join(', ') || 'none'})` });
      outcomes.push({ name: call.name, ok: false });
      continue;
    }
    try {
      observations.push({ role: 'tool', content: await tool.call(call.arguments) });
      outcomes.push({ name: call.name, ok: true });
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      observations.push({ role: 'tool', content: `error: ${err.message}` });
      outcomes.push({ name: call.name, ok: false });
    }
  }
  return { observations, outcomes };
}
