// What the pool and its scoring threads say to each other.
import type { RewardResult, RewardSpecInput, ScoreInput } from '@temper/rewards';

export interface ThreadData {
  plugins: string[];
  maxCompletionChars: number;
  /**
   * Shared with the pool: [0] is 1 + the index of the item being scored (0 when idle),
   * and the float at byte 8 is when that item started (Date.now()), so the pool can see
   * a stuck item without the thread having to answer.
   */
  progress: SharedArrayBuffer;
}

export interface ChunkRequest {
  id: number;
  /** A key for the spec, so a thread compiles each spec once. */
  specKey: string;
  spec: RewardSpecInput | null;
  items: ScoreInput[];
}

export type ChunkReply = { id: number; results: RewardResult[] } | { id: number; error: string };
