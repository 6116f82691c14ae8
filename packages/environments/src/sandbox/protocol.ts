// Messages between the generator's thread and the sandbox thread.
import type { SandboxLimits } from './quickjs-host';

export type SandboxRequest =
  | { id: number; op: 'open'; conversation: number; source: string; limits: SandboxLimits }
  | { id: number; op: 'call'; conversation: number; fn: 'reset' | 'step' | 'tools'; arg: unknown }
  | { id: number; op: 'close'; conversation: number };

export type SandboxReply = { id: number; value: unknown } | { id: number; error: string };
