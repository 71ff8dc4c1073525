/**
 * Option validation (lib/options/normalizeOptions.ts and remoteOptions.ts), tested directly:
 * every face goes through normalizeOptions with its FaceRules, so a rule and its message
 * exist once. Exact messages for a few bad values per face, the "did you mean" hints (global
 * and per face), and the defaults that differ by face.
 */
import { hostname } from 'node:os';
import { asapScheduler, asyncScheduler } from 'rxjs';
import { BATCH_MAP_FACE, BATCHER_FACE, normalizeOptions } from '../../lib/options/normalizeOptions';
import { producerOptions, REMOTE_TIMEOUT_HINT, workerOptions } from '../../lib/remote/remoteOptions';
import { jsonCodec, v8Codec } from '../../lib/remote';
import { ManualScheduler } from '../helpers/manualScheduler';

const run = (xs: readonly number[]) => xs;
/** The error a call throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected it to throw');
}
/** `[class name, message]` of what a call throws: the type of error is part of the contract. */
const refusal = (fn: () => unknown): [string, string] => {
  const e = thrown(fn);
  return [e.constructor.name, e.message];
};

const batcher = (o: unknown) => normalizeOptions(o, run, BATCHER_FACE);
const operator = (o: unknown) => normalizeOptions(o, run, BATCH_MAP_FACE);
const worker = (o: unknown, subject: unknown = 's') => workerOptions(subject, run, o);
const producer = (o: unknown, subject: unknown = 's') => producerOptions(subject, o, run);
/** The worker's default name: its subject, host and process. */
const W = `s@${hostname()}:${process.pid}`;

describe('normalizeOptions: Batcher and batchMap', () => {
  it('names the option and the value, TypeError for a wrong type and RangeError for a bad value', () => {
    expect(refusal(() => batcher({ maxBatchSize: 0 }))).toEqual(['RangeError', '[rx-batcher] "batcher": `maxBatchSize` must be an integer ≥ 1, got 0 (number).']);
    expect(refusal(() => batcher({ maxBatchSize: '4' }))).toEqual(['TypeError', '[rx-batcher] "batcher": `maxBatchSize` must be an integer ≥ 1, got "4" (string).']);
    expect(refusal(() => batcher({}))).toEqual(['TypeError', '[rx-batcher] "batcher": `maxBatchSize` is required: the most inputs one runBatch call may receive (an integer ≥ 1).']);
    expect(refusal(() => normalizeOptions({ maxBatchSize: 4 }, undefined, BATCHER_FACE))).toEqual(['TypeError', '[rx-batcher] "batcher": `runBatch` must be a function (inputs, ctx) => results, got undefined.']);
    expect(refusal(() => batcher({ maxBatchSize: 4, maxDelayMs: -1, name: 'ranker' }))).toEqual(['RangeError', '[rx-batcher] "ranker": `maxDelayMs` must be a number of milliseconds ≥ 0, got -1 (number).']);
    expect(refusal(() => batcher({ maxBatchSize: 4, timeoutMs: 0 }))).toEqual(['RangeError', '[rx-batcher] "batcher": `timeoutMs` must be a number of milliseconds > 0 (or Infinity for none), got 0 (number).']);
    expect(refusal(() => batcher({ maxBatchSize: 4, maxDelayMs: 2 ** 31 }))).toEqual(['RangeError', '[rx-batcher] "batcher": `maxDelayMs` must be at most 2147483647 (2^31-1 ms, about 24.8 days, the longest timer Node runs), got 2147483648 (number). To send only full batches, set a long maxDelayMs and call flush() when needed.']);
    expect(refusal(() => batcher(null))).toEqual(['TypeError', '[rx-batcher] "batcher": expected an options object such as { maxBatchSize: 32, maxDelayMs: 5 }, got null.']);
    expect(refusal(() => batcher({ maxBatchSize: 4, name: '' }))).toEqual(['TypeError', '[rx-batcher] "batcher": `name` must be a non-empty string, got "" (string).']);
  });

  it('suggests the name people bring from elsewhere, or the nearest typo, else lists the known options', () => {
    expect(thrown(() => batcher({ maxBatchSize: 4, batchSize: 3 })).message).toBe('[rx-batcher] "batcher": unknown option `batchSize`; did you mean `maxBatchSize`?');
    expect(thrown(() => batcher({ maxBatchSize: 4, maxWaitMs: 3 })).message).toMatch(/did you mean `maxDelayMs`\?$/);
    expect(thrown(() => batcher({ maxBatchSize: 4, maxBachSize: 3 })).message).toMatch(/unknown option `maxBachSize`; did you mean `maxBatchSize`\?$/);
    expect(thrown(() => batcher({ maxBatchSize: 4, zzz: 1 })).message).toBe('[rx-batcher] "batcher": unknown option `zzz`. Known options: runBatch, maxBatchSize, maxDelayMs, maxConcurrentBatches, maxQueueSize, timeoutMs, defaults, partitionBy, weigh, maxBatchWeight, agingMs, dedupeBy, latencyTarget, isolateFailures, name, scheduler.');
    // An own key named like an Object.prototype member is just unknown, never "hinted" from the prototype.
    expect(thrown(() => batcher(JSON.parse('{"maxBatchSize":4,"toString":1}'))).message).toMatch(/unknown option `toString`\. Known options:/);
  });

  it('batchMap takes the same rules without runBatch, under its own default name', () => {
    expect(refusal(() => operator({ maxBatchSize: 4, runBatch: run }))).toEqual(['TypeError', '[rx-batcher] "batchMap": unknown option `runBatch`. Known options: maxBatchSize, maxDelayMs, maxConcurrentBatches, maxQueueSize, timeoutMs, defaults, partitionBy, weigh, maxBatchWeight, agingMs, dedupeBy, latencyTarget, isolateFailures, name, scheduler.']);
    expect(refusal(() => operator({ maxBatchSize: 4, maxConcurrentBatches: 1.5 }))).toEqual(['RangeError', '[rx-batcher] "batchMap": `maxConcurrentBatches` must be an integer ≥ 1 or Infinity, got 1.5 (number).']);
    expect(thrown(() => operator({ maxBatchSize: 4, concurrency: 2 })).message).toBe('[rx-batcher] "batchMap": unknown option `concurrency`; did you mean `maxConcurrentBatches`?');
  });

  it('fills the local defaults: one slot, no limit, no deadline, asap window for 0 ms, async otherwise; frozen', () => {
    const c = batcher({ maxBatchSize: 4 });
    expect(c).toMatchObject({
      name: 'batcher', maxBatchSize: 4, maxDelayMs: 0, maxConcurrentBatches: 1, maxQueueSize: Infinity,
      timeoutMs: Infinity, defaults: undefined, defaultKeys: [], partitionBy: undefined,
      limitCountsRunning: false, timeoutHint: undefined,
    });
    expect(c.windowScheduler).toBe(asapScheduler);
    expect(c.deadlineScheduler).toBe(asyncScheduler);
    expect(batcher({ maxBatchSize: 4, maxDelayMs: 5 }).windowScheduler).toBe(asyncScheduler);
    expect(Object.isFrozen(c)).toBe(true);
    expect(operator({ maxBatchSize: 2 })).toMatchObject({ name: 'batchMap', maxConcurrentBatches: 1 });
    const scheduler = new ManualScheduler();
    const custom = batcher({ maxBatchSize: 4, scheduler, defaults: { k: 0 } });
    expect([custom.windowScheduler, custom.deadlineScheduler]).toEqual([scheduler, scheduler]);
    expect(custom.defaultKeys).toEqual(['k']);
    expect(Object.isFrozen(custom.defaults)).toBe(true);
  });
});

describe('workerOptions: serveBatches', () => {
  it('refuses the worker\'s own options with exact messages', () => {
    expect(refusal(() => worker({ maxBatchSize: 4, claimIdleMs: 5 }))).toEqual(['RangeError', `[rx-batcher] "${W}": \`claimIdleMs\` must be a finite number of milliseconds ≥ 10, got 5 (number).`]);
    expect(refusal(() => worker({ maxBatchSize: 4, claimIdleMs: '100' }))).toEqual(['TypeError', `[rx-batcher] "${W}": \`claimIdleMs\` must be a finite number of milliseconds ≥ 10, got "100" (string).`]);
    expect(refusal(() => worker({ maxBatchSize: 4, claimIdleMs: 100, touchEveryMs: 100, name: 'w' }))).toEqual(['RangeError', '[rx-batcher] "w": `touchEveryMs` (100) must be below `claimIdleMs` (100), or held requests get reclaimed and answered twice; claimIdleMs / 3 is a good value.']);
    expect(refusal(() => worker({ maxBatchSize: 4, maxDeliveries: 0, name: 'w' }))).toEqual(['RangeError', '[rx-batcher] "w": `maxDeliveries` must be an integer ≥ 1, got 0 (number).']);
    expect(refusal(() => worker({ maxBatchSize: 4, expiredGraceMs: -1, name: 'w' }))).toEqual(['RangeError', '[rx-batcher] "w": `expiredGraceMs` must be a number of milliseconds ≥ 0, got -1 (number).']);
    expect(refusal(() => worker({ maxBatchSize: 4, codec: {}, name: 'w' }))).toEqual(['TypeError', '[rx-batcher] "w": `codec` must be an object with encode(value) and decode(bytes), got an object (object).']);
    expect(refusal(() => worker({ maxBatchSize: 4 }, ''))).toEqual(['TypeError', '[rx-batcher] "serveBatches": serveBatches(transport, subject, runBatch, options): `subject` must be a non-empty string such as \'scorer\', got "" (string).']);
    expect(refusal(() => worker(null))).toEqual(['TypeError', '[rx-batcher] "s": options must be an object like { maxBatchSize: 32 }, got null.']);
    expect(refusal(() => worker({}))).toEqual(['TypeError', `[rx-batcher] "${W}": \`maxBatchSize\` is required: the most inputs one runBatch call may receive (an integer ≥ 1).`]);
  });

  it('hints maxWaitMs → maxDelayMs and the broker names ackWaitMs / visibilityTimeoutMs → claimIdleMs; a producer-only option is just unknown', () => {
    expect(thrown(() => worker({ maxBatchSize: 4, maxWaitMs: 2 })).message).toBe(`[rx-batcher] "${W}": unknown option \`maxWaitMs\`; did you mean \`maxDelayMs\`?`);
    expect(thrown(() => worker({ maxBatchSize: 4, ackWaitMs: 2 })).message).toBe(`[rx-batcher] "${W}": unknown option \`ackWaitMs\`; did you mean \`claimIdleMs\`?`);
    expect(thrown(() => worker({ maxBatchSize: 4, visibilityTimeoutMs: 2 })).message).toMatch(/did you mean `claimIdleMs`\?$/);
    expect(thrown(() => worker({ maxBatchSize: 4, maxDeliver: 2 })).message).toMatch(/did you mean `maxDeliveries`\?$/);
    expect(thrown(() => worker({ maxBatchSize: 4, timeoutMs: 2 })).message).toBe(`[rx-batcher] "${W}": unknown option \`timeoutMs\`. Known options: maxBatchSize, maxDelayMs, maxConcurrentBatches, defaults, partitionBy, weigh, maxBatchWeight, agingMs, dedupeBy, latencyTarget, isolateFailures, name, scheduler, claimIdleMs, touchEveryMs, maxDeliveries, expiredGraceMs, codec, onError, afterReply, auth, maxPayloadBytes, onBrokerEvent.`);
    // The ackWaitMs hint is the worker's own: elsewhere it is not offered.
    expect(thrown(() => batcher({ maxBatchSize: 4, ackWaitMs: 2 })).message).not.toContain('claimIdleMs');
  });

  it('fills the worker defaults: named after subject, host and process; claims of 10 s renewed every third', () => {
    const { config, rules } = worker({ maxBatchSize: 4 });
    expect(config).toMatchObject({ name: W, maxBatchSize: 4, maxDelayMs: 0, maxConcurrentBatches: 1, maxQueueSize: Infinity, timeoutMs: Infinity, limitCountsRunning: false });
    expect(rules).toMatchObject({ claimIdleMs: 10_000, touchEveryMs: 3333, maxDeliveries: 5, expiredGraceMs: 1000, afterReply: undefined });
    expect(rules.codec).toBe(v8Codec);
    expect(worker({ maxBatchSize: 4, claimIdleMs: 300, expiredGraceMs: Infinity, codec: jsonCodec }).rules).toMatchObject({ claimIdleMs: 300, touchEveryMs: 100, expiredGraceMs: Infinity, codec: jsonCodec });
    expect(worker({ maxBatchSize: 4, claimIdleMs: 10, touchEveryMs: 0 }).rules.touchEveryMs).toBe(0); // renewal off
  });
});

describe('producerOptions: remoteBatcher', () => {
  it('refuses with exact messages, and hints maxInFlight / maxPending → maxQueueSize', () => {
    expect(refusal(() => producer({ maxInFlight: 3 }))).toEqual(['TypeError', '[rx-batcher] "s": unknown option `maxInFlight`; did you mean `maxQueueSize`?']);
    expect(thrown(() => producer({ maxPending: 3 })).message).toBe('[rx-batcher] "s": unknown option `maxPending`; did you mean `maxQueueSize`?');
    expect(thrown(() => producer({ timeout: 5 })).message).toBe('[rx-batcher] "s": unknown option `timeout`; did you mean `timeoutMs`?');
    // Batching rules belong to the workers: not offered, and not hinted at.
    expect(thrown(() => producer({ maxDelayMs: 5 })).message).toBe('[rx-batcher] "s": unknown option `maxDelayMs`. Known options: name, timeoutMs, maxQueueSize, dedupeBy, codec, scheduler, onError, auth, maxPayloadBytes, onBrokerEvent.');
    expect(refusal(() => producer({ maxQueueSize: 0 }))).toEqual(['RangeError', '[rx-batcher] "s": `maxQueueSize` must be an integer ≥ 1 or Infinity, got 0 (number).']);
    expect(refusal(() => producer({ timeoutMs: -5, name: 'scorer' }))).toEqual(['RangeError', '[rx-batcher] "scorer": `timeoutMs` must be a number of milliseconds > 0 (or Infinity for none), got -5 (number).']);
    expect(refusal(() => producer({ scheduler: {} }))).toEqual(['TypeError', '[rx-batcher] "s": `scheduler` must be an RxJS SchedulerLike (with schedule() and now()), got an object (object).']);
    expect(refusal(() => producer('x'))).toEqual(['TypeError', '[rx-batcher] "s": options must be an object like { timeoutMs: 2000 }, got "x" (string).']);
    expect(refusal(() => producer({}, ''))).toEqual(['TypeError', '[rx-batcher] "remoteBatcher": remoteBatcher(transport, subject, options): `subject` must be a non-empty string such as \'scorer\', got "" (string).']);
  });

  it('fills the producer defaults: no slot limit, big pipelined sends, running requests count toward maxQueueSize', () => {
    const { config, rules } = producer({});
    expect(config).toMatchObject({
      name: 's', maxBatchSize: 1024, maxDelayMs: 0, maxConcurrentBatches: Infinity, maxQueueSize: Infinity,
      timeoutMs: Infinity, limitCountsRunning: true, timeoutHint: REMOTE_TIMEOUT_HINT,
    });
    expect(config.windowScheduler).toBe(asapScheduler); // what one tick issues leaves in one send
    expect(rules.codec).toBe(v8Codec);
    const scheduler = new ManualScheduler();
    expect(producer({ name: 'scorer', timeoutMs: 200, maxQueueSize: 10, scheduler })).toMatchObject({
      config: { name: 'scorer', timeoutMs: 200, maxQueueSize: 10, windowScheduler: scheduler, deadlineScheduler: scheduler },
    });
  });
});
