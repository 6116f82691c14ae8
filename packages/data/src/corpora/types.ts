// Plain shapes for text data: documents for next-token training, prompt/response pairs for
// SFT, and a named, re-openable source of documents for mixtures.

export interface Document {
  text: string;
  /** Which corpus or file the document came from. */
  source: string;
}

export interface PromptResponse {
  prompt: string;
  response: string;
  source: string;
}

/** A corpus a mixture can draw from; open() starts it from the beginning (a new epoch). */
export interface DocumentSource {
  name: string;
  open(): Iterator<Document>;
}

/** How a prompt/response pair becomes one training document. */
export type PairRenderer = (prompt: string, response: string) => string;

/** The default: "Q: …\nA: …", the same shape as the byte tokenizer's chat template. */
export const renderQa: PairRenderer = (prompt, response) => `Q: ${prompt}\nA: ${response}`;
