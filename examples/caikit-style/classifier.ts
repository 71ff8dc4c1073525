/**
 * Recipe: a caikit-style module. caikit's `run_batch(**kwargs)` receives one list per
 * argument; here the model function receives one array per field (`columnar`), optional
 * fields are filled by `defaults` (falsy ones too: `threshold: 0`, `lowercase: false`), and
 * requests for different model variants never share a batch (`partitionBy`).
 */
import { Batcher, columnar, type Columns } from 'rx-batcher';

/** One classification request. Only `text` is required. */
export interface ClassifyRequest {
  /** The text to classify. */
  readonly text: string;
  /** Which fine-tuned variant to run; requests for different variants need different weights. */
  readonly variant?: 'base' | 'legal' | 'medical';
  /** Labels scoring below it are dropped. Default 0: keep every label (a falsy default). */
  readonly threshold?: number;
  /** Lowercase the text first. Default `false` (a falsy default). */
  readonly lowercase?: boolean;
  /** At most this many labels. Default 3. */
  readonly topK?: number;
}

/** One classification result. */
export interface ClassifyResult {
  readonly variant: string;
  readonly labels: readonly { readonly label: string; readonly score: number }[];
}

/** Every model call, as the model saw it: the columns it received. */
export type ModelCall = Columns<Required<ClassifyRequest>>;

const LABELS = ['greeting', 'question', 'complaint', 'praise'] as const;

/**
 * A stand-in for a batched classifier with caikit's calling convention: one array per
 * argument, aligned by batch position. It refuses mixed variants and missing arguments, the
 * way a real model would, so the recipe shows that `partitionBy` and `defaults` prevent both.
 *
 * @example
 * ```ts
 * const calls: ModelCall[] = [];
 * runColumns({ text: ['hi?'], variant: ['base'], threshold: [0], lowercase: [false], topK: [3] }, calls);
 * ```
 */
export function runColumns(columns: ModelCall, calls: ModelCall[]): ClassifyResult[] {
  calls.push(columns);
  const { text, variant, threshold, lowercase, topK } = columns;
  const variants = new Set(variant);
  if (variants.size !== 1) throw new Error(`one batch must use one variant, got ${[...variants].join(', ')}`);
  for (const [name, column] of Object.entries(columns)) {
    if (column.length !== text.length || column.some((v: unknown) => v === undefined)) {
      throw new Error(`argument ${name} is missing for some rows`);
    }
  }
  return text.map((raw, i) => {
    const t = lowercase[i] ? raw.toLowerCase() : raw;
    const scores = LABELS.map((label) => ({ label, score: scoreOf(label, t) }));
    const kept = scores.filter((s) => s.score >= threshold[i]).sort((a, b) => b.score - a.score);
    return { variant: variant[i], labels: kept.slice(0, topK[i]) };
  });
}

/** A deterministic toy score in [0, 1]. */
function scoreOf(label: (typeof LABELS)[number], text: string): number {
  const hits: Record<(typeof LABELS)[number], boolean> = {
    greeting: /\b(hi|hello)\b/i.test(text),
    question: text.includes('?'),
    complaint: /\b(broken|bad)\b/.test(text),
    praise: /\b(great|love)\b/.test(text),
  };
  return hits[label] ? 0.9 : /[A-Z]/.test(text) ? 0.2 : 0.1;
}

/**
 * Creates the batcher: object inputs in, one array per field to the model.
 *
 * @example
 * ```ts
 * const { batcher, calls } = createClassifier();
 * const result = await batcher.run({ text: 'Hello, is it broken?', variant: 'legal' });
 * await batcher.stop({ drain: true });
 * ```
 */
export function createClassifier(options: { maxBatchSize?: number; maxDelayMs?: number } = {}): {
  batcher: Batcher<ClassifyRequest, ClassifyResult>;
  calls: ModelCall[];
} {
  const calls: ModelCall[] = [];
  const batcher = new Batcher<ClassifyRequest, ClassifyResult>({
    name: 'classifier',
    maxBatchSize: options.maxBatchSize ?? 8,
    maxDelayMs: options.maxDelayMs ?? 5,
    // Filled in for every key a caller left out (or set to undefined), falsy values included.
    defaults: { variant: 'base', threshold: 0, lowercase: false, topK: 3 },
    // Requests for different variants are queued and batched separately.
    partitionBy: (request) => request.variant ?? 'base',
    // After `defaults`, every column is complete, so the model gets Columns<Required<…>>.
    runBatch: columnar<ClassifyRequest, ClassifyResult>((columns) => runColumns(columns as ModelCall, calls)),
  });
  return { batcher, calls };
}
