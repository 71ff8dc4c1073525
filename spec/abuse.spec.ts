import { asyncScheduler } from 'rxjs';
import { Batcher, batchMap, type BatcherOptions } from '../lib';

const runBatch = (xs: readonly number[]) => xs;
const make = (options: Partial<BatcherOptions<number, number>> & Record<string, unknown>) =>
  () => new Batcher<number, number>({ runBatch, maxBatchSize: 4, ...options } as BatcherOptions<number, number>);

describe('Provides descriptive error messages for API abuse', () => {
  it('options must be an object', () => {
    expect(() => new Batcher(undefined as never)).toThrow(
      new TypeError('[rx-batcher] "batcher": expected an options object such as { maxBatchSize: 32, maxDelayMs: 5 }, got undefined.'),
    );
    expect(() => new Batcher([] as never)).toThrow(TypeError);
  });

  it('runBatch must be a function', () => {
    expect(make({ runBatch: 'model' as never })).toThrow(
      new TypeError('[rx-batcher] "batcher": `runBatch` must be a function (inputs, ctx) => results, got "model" (string).'),
    );
    expect(() => batchMap(undefined as never, { maxBatchSize: 1 })).toThrow(
      new TypeError('[rx-batcher] "batchMap": `runBatch` must be a function (inputs, ctx) => results, got undefined.'),
    );
  });

  it('maxBatchSize is required and must be an integer ≥ 1', () => {
    expect(() => new Batcher({ runBatch } as never)).toThrow(
      new TypeError('[rx-batcher] "batcher": `maxBatchSize` is required: the most inputs one runBatch call may receive (an integer ≥ 1).'),
    );
    expect(make({ maxBatchSize: 0 })).toThrow(new RangeError('[rx-batcher] "batcher": `maxBatchSize` must be an integer ≥ 1, got 0 (number).'));
    expect(make({ maxBatchSize: 2.5 })).toThrow(RangeError);
    expect(make({ maxBatchSize: Infinity })).toThrow(RangeError);
    expect(make({ maxBatchSize: NaN })).toThrow(RangeError);
    expect(make({ maxBatchSize: '8' as never })).toThrow(
      new TypeError('[rx-batcher] "batcher": `maxBatchSize` must be an integer ≥ 1, got "8" (string).'),
    );
  });

  it('maxDelayMs must be a finite number ≥ 0', () => {
    expect(make({ maxDelayMs: -1 })).toThrow(
      new RangeError('[rx-batcher] "batcher": `maxDelayMs` must be a number of milliseconds ≥ 0, got -1 (number).'),
    );
    expect(make({ maxDelayMs: Infinity })).toThrow(RangeError);
    expect(make({ maxDelayMs: NaN })).toThrow(RangeError);
    expect(make({ maxDelayMs: null as never })).toThrow(TypeError);
  });

  it('maxConcurrentBatches and maxQueueSize must be integers ≥ 1 or Infinity', () => {
    expect(make({ maxConcurrentBatches: 0 })).toThrow(
      new RangeError('[rx-batcher] "batcher": `maxConcurrentBatches` must be an integer ≥ 1 or Infinity, got 0 (number).'),
    );
    expect(make({ maxQueueSize: -5 })).toThrow(
      new RangeError('[rx-batcher] "batcher": `maxQueueSize` must be an integer ≥ 1 or Infinity, got -5 (number).'),
    );
    expect(make({ maxQueueSize: 1.5 })).toThrow(RangeError);
  });

  it('timeoutMs must be a number > 0', () => {
    expect(make({ timeoutMs: 0 })).toThrow(
      new RangeError('[rx-batcher] "batcher": `timeoutMs` must be a number of milliseconds > 0 (or Infinity for none), got 0 (number).'),
    );
    expect(make({ timeoutMs: '1s' as never })).toThrow(TypeError);
  });

  it('defaults must be a plain object, partitionBy a function, scheduler a SchedulerLike, name a non-empty string', () => {
    expect(make({ defaults: [1] as never })).toThrow(
      new TypeError('[rx-batcher] "batcher": `defaults` must be a plain object of default field values, got an array of length 1 (object).'),
    );
    expect(make({ partitionBy: 'model' as never })).toThrow(
      new TypeError('[rx-batcher] "batcher": `partitionBy` must be a function (input) => string, got "model" (string).'),
    );
    expect(make({ scheduler: {} as never })).toThrow(
      new TypeError('[rx-batcher] "batcher": `scheduler` must be an RxJS SchedulerLike (with schedule() and now()), got an object (object).'),
    );
    expect(make({ name: '' })).toThrow(new TypeError('[rx-batcher] "batcher": `name` must be a non-empty string, got "" (string).'));
  });

  it('names the batcher in its messages', () => {
    expect(make({ name: 'ranker', maxBatchSize: 0 })).toThrow('[rx-batcher] "ranker": `maxBatchSize` must be an integer ≥ 1, got 0 (number).');
  });

  it('rejects unknown options, and suggests the option people usually mean', () => {
    expect(make({ batchSize: 8 })).toThrow(new TypeError('[rx-batcher] "batcher": unknown option `batchSize`; did you mean `maxBatchSize`?'));
    expect(make({ batch_collect_delay_s: 0.01 })).toThrow('did you mean `maxDelayMs`?');
    expect(make({ concurrency: 2 })).toThrow('did you mean `maxConcurrentBatches`?');
    // The same wording as run() and stop(): a near miss is named, an inherited name is no hint.
    expect(make({ maxBatchSze: 8 })).toThrow('unknown option `maxBatchSze`; did you mean `maxBatchSize`?');
    expect(make({ toString: 1 })).toThrow('unknown option `toString`. Known options: runBatch,');
    expect(make({ colour: 'red' })).toThrow(
      '[rx-batcher] "batcher": unknown option `colour`. Known options: runBatch, maxBatchSize, maxDelayMs, maxConcurrentBatches, maxQueueSize, timeoutMs, defaults, partitionBy, weigh, maxBatchWeight, agingMs, dedupeBy, latencyTarget, isolateFailures, name, scheduler.',
    );
  });

  it('batchMap validates its options when the operator is created, not on subscribe', () => {
    expect(() => batchMap(runBatch, { maxBatchSize: 0 })).toThrow(
      new RangeError('[rx-batcher] "batchMap": `maxBatchSize` must be an integer ≥ 1, got 0 (number).'),
    );
  });

  it('accepts the edge values', () => {
    expect(make({ maxBatchSize: 1, maxDelayMs: 0 })).not.toThrow();
    expect(make({ maxConcurrentBatches: Infinity, maxQueueSize: Infinity, timeoutMs: Infinity })).not.toThrow();
    expect(make({ maxQueueSize: 1, timeoutMs: 0.5, defaults: {} as never, name: 'x', scheduler: asyncScheduler })).not.toThrow();
    expect(make({ defaults: { flag: false, n: 0, s: '', none: null } as never })).not.toThrow();
  });
});
