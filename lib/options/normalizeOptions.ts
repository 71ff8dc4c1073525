import { asapScheduler, asyncScheduler, type SchedulerLike } from 'rxjs';
import { MAX_TIMER_MS } from '../core/deadlines.js';
import { describeValue, prefix } from '../errors/describe.js';
import type { BatchConfig } from '../core/config.js';
import { checkLatencyTarget } from './latencyTargetOption.js';
import type { IsolateFailures, RunBatch, RunOptions, StopOptions } from '../types.js';

const KNOWN_OPTIONS: readonly string[] = [
  'runBatch', 'maxBatchSize', 'maxDelayMs', 'maxConcurrentBatches', 'maxQueueSize',
  'timeoutMs', 'defaults', 'partitionBy', 'weigh', 'maxBatchWeight', 'agingMs', 'dedupeBy', 'latencyTarget', 'isolateFailures', 'name', 'scheduler',
];

/** The default of `agingMs`: a call's priority is worth one second of waiting per level. */
export const DEFAULT_AGING_MS = 1000;

/** Names people bring from caikit, DataLoader, promise-batcher and friends. */
const LIKELY_MEANT: Readonly<Record<string, string>> = {
  batchSize: 'maxBatchSize', batch_size: 'maxBatchSize', size: 'maxBatchSize', maxSize: 'maxBatchSize',
  delay: 'maxDelayMs', maxDelay: 'maxDelayMs', batch_collect_delay_s: 'maxDelayMs', queuingDelay: 'maxDelayMs',
  windowMs: 'maxDelayMs', maxWaitMs: 'maxDelayMs', maxDelayMS: 'maxDelayMs', wait: 'maxDelayMs',
  concurrency: 'maxConcurrentBatches', maxConcurrency: 'maxConcurrentBatches',
  maxQueue: 'maxQueueSize', queueSize: 'maxQueueSize', timeout: 'timeoutMs',
  batch_size_fn: 'weigh', batchSizeFn: 'weigh', weight: 'weigh', weightOf: 'weigh', cost: 'weigh',
  maxWeight: 'maxBatchWeight', maxTokens: 'maxBatchWeight', maxBatchTokens: 'maxBatchWeight', budget: 'maxBatchWeight',
  aging: 'agingMs', agingIntervalMs: 'agingMs', starvationMs: 'agingMs', priorityAgingMs: 'agingMs',
  cacheKeyFn: 'dedupeBy', dedupe: 'dedupeBy', dedupeKey: 'dedupeBy', deduplicate: 'dedupeBy', keyFn: 'dedupeBy',
  isolate: 'isolateFailures', bisect: 'isolateFailures', isolateErrors: 'isolateFailures', splitOnError: 'isolateFailures', retryBisect: 'isolateFailures',
  targetLatency: 'latencyTarget', latencySlo: 'latencyTarget', slo: 'latencyTarget', p99Ms: 'latencyTarget', targetMs: 'latencyTarget',
  batchFn: 'runBatch', batchLoadFn: 'runBatch', batchingFunction: 'runBatch', run_batch: 'runBatch', fetcher: 'runBatch',
};

export function fail(kind: 'type' | 'range', name: string, message: string): never {
  const text = `${prefix(name)} ${message}`;
  throw kind === 'type' ? new TypeError(text) : new RangeError(text);
}

export function integerAtLeast(name: string, option: string, value: unknown, min: number, allowInfinity: boolean): number {
  const rule = `\`${option}\` must be an integer ≥ ${min}${allowInfinity ? ' or Infinity' : ''}, got ${describeValue(value)}.`;
  if (typeof value !== 'number') fail('type', name, rule);
  if (value === Infinity && allowInfinity) return value;
  if (!Number.isInteger(value) || value < min) fail('range', name, rule);
  return value;
}

export function milliseconds(name: string, option: string, value: unknown, allowZero: boolean): number {
  const rule = `\`${option}\` must be a number of milliseconds ${allowZero ? '≥ 0' : '> 0 (or Infinity for none)'}, got ${describeValue(value)}.`;
  if (typeof value !== 'number') fail('type', name, rule);
  if (Number.isNaN(value) || value < 0 || (!allowZero && value === 0) || (allowZero && value === Infinity)) {
    fail('range', name, rule);
  }
  return value;
}

/**
 * `maxDelayMs` times a real timer, and Node runs a longer one after 1 ms: refuse it rather
 * than re-arm a window every millisecond. (Deadlines, `timeoutMs`, may be longer: they are
 * reached in steps.)
 */
function delayMs(name: string, value: unknown): number {
  const ms = milliseconds(name, 'maxDelayMs', value, true);
  if (ms > MAX_TIMER_MS) {
    fail('range', name, `\`maxDelayMs\` must be at most ${MAX_TIMER_MS} (2^31-1 ms, about 24.8 days, the longest timer Node runs), got ${describeValue(value)}. To send only full batches, set a long maxDelayMs and call flush() when needed.`);
  }
  return ms;
}

function isScheduler(value: unknown): value is SchedulerLike {
  return (
    typeof value === 'object' && value !== null &&
    typeof (value as SchedulerLike).schedule === 'function' && typeof (value as SchedulerLike).now === 'function'
  );
}

/**
 * What one face (Batcher, batchMap, a remote worker or producer) accepts: its option names,
 * the hints for names people bring from elsewhere, and the defaults that differ by face.
 * Every face goes through {@link normalizeOptions}, so a rule and its message exist once.
 */
export interface FaceRules {
  /** Names the face in messages until the options give a `name`. */
  readonly defaultName: string;
  /** Every option key the face accepts (its own ones included). */
  readonly keys: readonly string[];
  /** Extra "did you mean" hints for this face. */
  readonly hints?: Readonly<Record<string, string>>;
  /** Without one, `maxBatchSize` is required. */
  readonly maxBatchSizeDefault?: number;
  /** @default 1 */
  readonly maxConcurrentBatchesDefault?: number;
  /** See {@link BatchConfig.limitCountsRunning}. */
  readonly limitCountsRunning?: boolean;
  /** See {@link BatchConfig.timeoutHint}. */
  readonly timeoutHint?: string;
}

/**
 * A face that runs on `Batcher` (the remote producer) passes its config, already validated
 * with its own {@link FaceRules}, under this key instead of public options. Not exported.
 */
export const PREBUILT_CONFIG: unique symbol = Symbol('rx-batcher.prebuiltConfig');

/** What a face built on `Batcher` hands over under {@link PREBUILT_CONFIG}. */
export interface Prebuilt<I, O> {
  readonly config: BatchConfig<I, O>;
  /** Validates `configure()` changes with the face's own rules. */
  readonly rebuild: (changes: unknown) => BatchConfig<I, O>;
  /**
   * Called once with a function that makes `stats$` emit a fresh snapshot, for counts the face
   * keeps outside the engine (the producer's connection and dropped-frame counts).
   */
  readonly notifyStats?: (changed: () => void) => void;
}

/** The options of `new Batcher(…)`. */
export const BATCHER_FACE: FaceRules = { defaultName: 'batcher', keys: KNOWN_OPTIONS };
/** The options of `new StreamingBatcher(…)`: `runBatch` (returning steps) or `continuous`, and the `for await` buffer. */
export const STREAMING_FACE: FaceRules = { defaultName: 'batcher', keys: [...KNOWN_OPTIONS, 'continuous', 'maxBufferedChunks'] };
/** Options only a streaming batcher has; other faces refuse them with a pointer to it. */
const STREAMING_ONLY: readonly string[] = ['continuous', 'maxBufferedChunks', 'streaming'];
/** The options of `batchMap(runBatch, …)` and `batchMapSettled`. */
export const BATCH_MAP_FACE: FaceRules = { defaultName: 'batchMap', keys: KNOWN_OPTIONS.filter((k) => k !== 'runBatch') };

/**
 * Checks every option and fills in defaults. Throws a `TypeError` (wrong type) or `RangeError`
 * (right type, bad value) that names the option and the value given.
 */
export function normalizeOptions<I, O>(
  options: unknown,
  runBatch: unknown,
  face: FaceRules,
): BatchConfig<I, O> {
  const defaultName = face.defaultName;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('type', defaultName, `expected an options object such as { maxBatchSize: 32, maxDelayMs: 5 }, got ${describeValue(options)}.`);
  }
  const o = options as Record<string, unknown>;
  const rawName = o.name;
  if (rawName !== undefined && (typeof rawName !== 'string' || rawName.length === 0)) {
    fail('type', defaultName, `\`name\` must be a non-empty string, got ${describeValue(rawName)}.`);
  }
  const name = (rawName as string | undefined) ?? defaultName;

  const unknown = unknownKey(o, face.keys);
  if (unknown !== undefined && STREAMING_ONLY.includes(unknown) && !face.keys.includes('continuous')) {
    fail('type', name, `\`${unknown}\` is an option of streaming outputs, which ${face === BATCHER_FACE ? 'Batcher' : 'this face'} does not have: use \`new StreamingBatcher({ runBatch | continuous, … })\` (batchMap and the remote faces do not stream outputs; see the guide's Streaming page).`);
  }
  if (unknown !== undefined) {
    fail('type', name, `unknown option \`${unknown}\`${suggest(unknown, face.keys, face.hints === undefined ? LIKELY_MEANT : { ...LIKELY_MEANT, ...face.hints })}`);
  }

  if (typeof runBatch !== 'function') {
    fail('type', name, `\`runBatch\` must be a function (inputs, ctx) => results, got ${describeValue(runBatch)}.`);
  }
  if (o.maxBatchSize === undefined && face.maxBatchSizeDefault === undefined) {
    fail('type', name, '`maxBatchSize` is required: the most inputs one runBatch call may receive (an integer ≥ 1).');
  }
  const maxBatchSize = o.maxBatchSize === undefined ? face.maxBatchSizeDefault! : integerAtLeast(name, 'maxBatchSize', o.maxBatchSize, 1, false);
  const latencyTarget = checkLatencyTarget(name, o.latencyTarget);
  // Under a latency target, waiting longer than the target itself never helps: that is the cap unless one is given.
  const maxDelayMs = o.maxDelayMs === undefined ? Math.min(latencyTarget?.p99Ms ?? 0, MAX_TIMER_MS) : delayMs(name, o.maxDelayMs);
  const maxConcurrentBatches =
    o.maxConcurrentBatches === undefined ? (face.maxConcurrentBatchesDefault ?? 1) : integerAtLeast(name, 'maxConcurrentBatches', o.maxConcurrentBatches, 1, true);
  const maxQueueSize = o.maxQueueSize === undefined ? Infinity : integerAtLeast(name, 'maxQueueSize', o.maxQueueSize, 1, true);
  const timeoutMs = o.timeoutMs === undefined ? Infinity : milliseconds(name, 'timeoutMs', o.timeoutMs, false);

  let defaults: Record<string, unknown> | undefined;
  if (o.defaults !== undefined) {
    const d = o.defaults;
    if (typeof d !== 'object' || d === null || Array.isArray(d)) {
      fail('type', name, `\`defaults\` must be a plain object of default field values, got ${describeValue(d)}.`);
    }
    defaults = Object.freeze({ ...(d as Record<string, unknown>) });
  }
  if (o.partitionBy !== undefined && typeof o.partitionBy !== 'function') {
    fail('type', name, `\`partitionBy\` must be a function (input) => string, got ${describeValue(o.partitionBy)}.`);
  }
  if (o.weigh !== undefined && typeof o.weigh !== 'function') {
    fail('type', name, `\`weigh\` must be a function (input) => number (what one input costs), got ${describeValue(o.weigh)}.`);
  }
  if (o.dedupeBy !== undefined && typeof o.dedupeBy !== 'function') {
    fail('type', name, `\`dedupeBy\` must be a function (input) => key, a string or number equal for identical inputs, got ${describeValue(o.dedupeBy)}.`);
  }
  let maxBatchWeight = Infinity;
  if (o.maxBatchWeight !== undefined) {
    const rule = `\`maxBatchWeight\` must be a number > 0 (or Infinity for no budget), got ${describeValue(o.maxBatchWeight)}.`;
    if (typeof o.maxBatchWeight !== 'number') fail('type', name, rule);
    if (!(o.maxBatchWeight > 0)) fail('range', name, rule);
    if (o.weigh === undefined && o.maxBatchWeight !== Infinity) {
      fail('type', name, `\`maxBatchWeight\` needs \`weigh\`: a function (input) => number that says what one input costs (e.g. its token count).`);
    }
    maxBatchWeight = o.maxBatchWeight;
  }
  let agingMs = DEFAULT_AGING_MS;
  if (o.agingMs !== undefined) {
    const rule = `\`agingMs\` must be a number of milliseconds > 0 (a waiting call gains one priority level per agingMs; Infinity for strict priorities, where a low priority can wait forever), got ${describeValue(o.agingMs)}.`;
    if (typeof o.agingMs !== 'number') fail('type', name, rule);
    if (!(o.agingMs > 0)) fail('range', name, rule);
    agingMs = o.agingMs;
  }
  if (o.scheduler !== undefined && !isScheduler(o.scheduler)) {
    fail('type', name, `\`scheduler\` must be an RxJS SchedulerLike (with schedule() and now()), got ${describeValue(o.scheduler)}.`);
  }
  const scheduler = o.scheduler as SchedulerLike | undefined;
  const isolateFailures = checkIsolateFailures(name, o.isolateFailures);

  return Object.freeze({
    name,
    runBatch: runBatch as RunBatch<I, O>,
    maxBatchSize,
    maxDelayMs,
    maxConcurrentBatches,
    maxQueueSize,
    timeoutMs,
    defaults,
    defaultKeys: defaults ? Object.keys(defaults) : [],
    partitionBy: o.partitionBy as ((input: I) => string) | undefined,
    weigh: o.weigh as ((input: I) => number) | undefined,
    maxBatchWeight,
    agingMs,
    dedupeBy: o.dedupeBy as ((input: I) => string | number) | undefined,
    latencyTarget,
    isolateFailures,
    // A zero window must still gather everything issued in the same synchronous run of code:
    // the asap scheduler fires on the microtask queue, like DataLoader's default.
    windowScheduler: scheduler ?? (maxDelayMs === 0 ? asapScheduler : asyncScheduler),
    deadlineScheduler: scheduler ?? asyncScheduler,
    limitCountsRunning: face.limitCountsRunning === true,
    timeoutHint: face.timeoutHint,
  });
}

const ISOLATE_FAILURES: readonly IsolateFailures[] = ['none', 'bisect'];

/** `isolateFailures`: `'none'` (the default) or `'bisect'`. */
function checkIsolateFailures(name: string, value: unknown): IsolateFailures {
  if (value === undefined) return 'none';
  if (typeof value === 'string' && (ISOLATE_FAILURES as readonly string[]).includes(value)) return value as IsolateFailures;
  const rule = `\`isolateFailures\` must be 'none' (a failed runBatch call fails every caller of its batch) or 'bisect' (the batch is split and retried until the failing input is alone), got ${describeValue(value)}.`;
  return fail(typeof value === 'string' ? 'range' : 'type', name, rule);
}

/**
 * Validates per-call options (`run(input, options)`, and the DataLoader drop-in's
 * `load(key, options)` with its own list of `allowed` fields); returns an error to reject the
 * call with, or the deadline in ms (`fallbackTimeoutMs` when the call set none).
 */
export function checkRunOptions(name: string, options: unknown, fallbackTimeoutMs: number, call = 'run(input, options)', allowed: readonly string[] = RUN_OPTIONS): number | Error {
  if (options === undefined) return fallbackTimeoutMs;
  if (typeof options !== 'object' || options === null) {
    return new TypeError(`${prefix(name)} ${call}: \`options\` must be an object like { signal, timeoutMs }, got ${describeValue(options)}.`);
  }
  const unknown = unknownKey(options, allowed);
  if (unknown !== undefined) {
    return new TypeError(`${prefix(name)} ${call}: unknown option \`${unknown}\`${suggest(unknown, allowed, LIKELY_MEANT_PER_CALL)}`);
  }
  const { signal, timeoutMs } = options as RunOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    return new TypeError(`${prefix(name)} ${call}: \`signal\` must be an AbortSignal, got ${describeValue(signal)}.`);
  }
  if (timeoutMs === undefined) return fallbackTimeoutMs;
  if (typeof timeoutMs !== 'number') {
    return new TypeError(`${prefix(name)} ${call}: \`timeoutMs\` must be a number of milliseconds > 0 (or Infinity for none), got ${describeValue(timeoutMs)}.`);
  }
  if (Number.isNaN(timeoutMs) || timeoutMs <= 0) {
    return new RangeError(`${prefix(name)} ${call}: \`timeoutMs\` must be a number of milliseconds > 0 (or Infinity for none), got ${describeValue(timeoutMs)}.`);
  }
  return timeoutMs;
}

/**
 * Validates the options of `stop(options)`; returns an error to reject the call with (the
 * batcher is then left running), or whether to drain.
 */
export function checkStopOptions(name: string, options: unknown): boolean | TypeError {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    return new TypeError(`${prefix(name)} stop(options): \`options\` must be an object like { drain: true }, got ${describeValue(options)}.`);
  }
  const unknown = unknownKey(options, STOP_OPTIONS);
  if (unknown !== undefined) {
    return new TypeError(`${prefix(name)} stop(options): unknown option \`${unknown}\`${suggest(unknown, STOP_OPTIONS, LIKELY_MEANT_PER_CALL)} The batcher was not stopped.`);
  }
  const drain = (options as StopOptions).drain;
  if (drain !== undefined && typeof drain !== 'boolean') {
    return new TypeError(`${prefix(name)} stop(options): \`drain\` must be a boolean, got ${describeValue(drain)}.`);
  }
  return drain === true;
}

const RUN_OPTIONS: readonly string[] = ['signal', 'timeoutMs', 'context', 'priority'];

/**
 * Validates a call's `priority` (an integer, higher first); returns it, or the error to
 * refuse the call with.
 */
export function checkPriority(name: string, priority: unknown): number | Error {
  if (typeof priority === 'number' && Number.isSafeInteger(priority)) return priority;
  const rule = `${prefix(name)} run(input, options): \`priority\` must be an integer (higher runs first; default 0), got ${describeValue(priority)}.`;
  return typeof priority === 'number' ? new RangeError(rule) : new TypeError(rule);
}

/** What `configure()` can change at run time (the rest is fixed at construction). */
export const CONFIGURABLE: readonly string[] = ['maxBatchSize', 'maxDelayMs', 'maxConcurrentBatches', 'maxQueueSize', 'maxBatchWeight', 'agingMs', 'latencyTarget', 'isolateFailures'];

/**
 * Validates `configure(changes)` and returns the new rules: the face's options with the changes
 * over them, through {@link normalizeOptions} (so every rule and message is the constructor's).
 * Throws like the constructor; `changes` naming something fixed at construction is a `TypeError`.
 */
export function reconfigured<I, O>(
  name: string,
  options: Readonly<Record<string, unknown>>,
  changes: unknown,
  runBatch: unknown,
  face: FaceRules,
): BatchConfig<I, O> {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    fail('type', name, `configure(options): \`options\` must be an object like { maxBatchSize: 64 }, got ${describeValue(changes)}.`);
  }
  const allowed = CONFIGURABLE.filter((key) => face.keys.includes(key));
  for (const key in changes) {
    if (!Object.prototype.hasOwnProperty.call(changes, key) || allowed.includes(key)) continue;
    const fixed = face.keys.includes(key) ? ' is fixed at construction' : `: unknown option${suggest(key, allowed, LIKELY_MEANT)}`;
    fail('type', name, `configure(options): \`${key}\`${fixed} (what can change: ${allowed.join(', ')}). Nothing was changed.`);
  }
  return normalizeOptions<I, O>({ ...options, ...(changes as Record<string, unknown>) }, runBatch, face);
}
const STOP_OPTIONS: readonly string[] = ['drain'];

/** Per-call names people bring from other libraries. */
const LIKELY_MEANT_PER_CALL: Readonly<Record<string, string>> = {
  timeout: 'timeoutMs', deadline: 'timeoutMs', deadlineMs: 'timeoutMs', ttl: 'timeoutMs',
  abortSignal: 'signal', abort: 'signal', cancel: 'signal',
  prio: 'priority', level: 'priority', importance: 'priority', urgency: 'priority', rank: 'priority',
  ctx: 'context', meta: 'context', metadata: 'context', traceId: 'context', trace: 'context',
  graceful: 'drain', wait: 'drain', flush: 'drain',
};

/** The first own key of `options` that is not in `known`. */
function unknownKey(options: object, known: readonly string[]): string | undefined {
  for (const key in options) {
    if (Object.prototype.hasOwnProperty.call(options, key) && !known.includes(key)) return key;
  }
  return undefined;
}

/**
 * `; did you mean \`x\`?` for a name from another library (`hints`) or a likely typo, else the
 * known names. One wording for the constructor, `run()` and `stop()`.
 */
function suggest(key: string, known: readonly string[], hints: Readonly<Record<string, string>>): string {
  let hint: string | undefined = Object.prototype.hasOwnProperty.call(hints, key) ? hints[key] : undefined;
  if (hint === undefined || !known.includes(hint)) {
    hint = undefined;
    let best = 3;
    for (const name of known) {
      const d = editDistance(key.toLowerCase(), name.toLowerCase());
      if (d < best) [best, hint] = [d, name];
    }
  }
  return hint !== undefined ? `; did you mean \`${hint}\`?` : `. Known options: ${known.join(', ')}.`;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
