import { hostname } from 'node:os';
import type { BatchConfig } from '../core/config.js';
import { describeValue, prefix } from '../errors/describe.js';
import { v8Codec, type Codec } from './codec.js';
import { MIN_KEY_BYTES, signerFor, type Signer } from './auth.js';
import type { RunBatch } from '../types.js';
import { checkOnBrokerEvent, type BrokerEvent } from './brokerEvents.js';
import { fail, integerAtLeast, milliseconds, normalizeOptions, type FaceRules } from '../options/normalizeOptions.js';

/* The two remote faces validate through normalizeOptions like Batcher and batchMap; only the
   options that exist nowhere else (claims, deliveries, codec, hooks) are checked here. */

const BATCHING_KEYS = ['maxBatchSize', 'maxDelayMs', 'maxConcurrentBatches', 'defaults', 'partitionBy', 'weigh', 'maxBatchWeight', 'agingMs', 'dedupeBy', 'latencyTarget', 'isolateFailures', 'name', 'scheduler'];
const WORKER_KEYS = [...BATCHING_KEYS, 'claimIdleMs', 'touchEveryMs', 'maxDeliveries', 'expiredGraceMs', 'codec', 'onError', 'afterReply', 'auth', 'maxPayloadBytes', 'onBrokerEvent'];
const PRODUCER_KEYS = ['name', 'timeoutMs', 'maxQueueSize', 'dedupeBy', 'codec', 'scheduler', 'onError', 'auth', 'maxPayloadBytes', 'onBrokerEvent'];

/** A producer has no window and no slots of its own: the capacity is in the workers. */
export const REMOTE_TIMEOUT_HINT = 'Raise timeoutMs, check that workers are running, or add workers (serveBatches) or their maxConcurrentBatches.';

/** What a worker needs beyond the batching rules. */
export interface WorkerRules {
  readonly claimIdleMs: number;
  readonly touchEveryMs: number;
  readonly maxDeliveries: number;
  readonly expiredGraceMs: number;
  readonly codec: Codec;
  readonly onError: (error: Error) => void;
  readonly afterReply: ((deliveries: readonly never[]) => void | Promise<void>) | undefined;
  /** Signs replies and checks requests; `undefined` when `auth` is off. */
  readonly signer: Signer | undefined;
  readonly maxPayloadBytes: number;
  readonly onBrokerEvent: ((event: BrokerEvent) => void) | undefined;
}

/** What a producer needs beyond the request lifecycle. */
export interface ProducerRules {
  readonly codec: Codec;
  readonly onError: (error: Error) => void;
  /** Signs requests and checks replies; `undefined` when `auth` is off. */
  readonly signer: Signer | undefined;
  readonly maxPayloadBytes: number;
  readonly onBrokerEvent: ((event: BrokerEvent) => void) | undefined;
}

function checkSubject(face: string, subject: unknown, call: string): string {
  if (typeof subject !== 'string' || subject.length === 0) {
    fail('type', face, `${call}: \`subject\` must be a non-empty string such as 'scorer', got ${describeValue(subject)}.`);
  }
  return subject;
}

function checkObject(name: string, options: unknown, example: string): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('type', name, `options must be an object like ${example}, got ${describeValue(options)}.`);
  }
  return options as Record<string, unknown>;
}

function checkCodec(name: string, value: unknown): Codec {
  if (value === undefined) return v8Codec;
  const codec = value as Codec;
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    fail('type', name, `\`codec\` must be an object with encode(value) and decode(bytes), got ${describeValue(value)}.`);
  }
  return codec;
}

/**
 * Validates `serveBatches(transport, subject, runBatch, options)`: the batching rules through
 * the same {@link normalizeOptions} as every face, then the worker's own options.
 */
export function workerOptions<I, O>(subject: unknown, runBatch: unknown, options: unknown): { config: BatchConfig<I, O>; rules: WorkerRules; face: FaceRules } {
  const face = checkSubject('serveBatches', subject, 'serveBatches(transport, subject, runBatch, options)');
  const o = checkObject(face, options, '{ maxBatchSize: 32 }');
  const rules: FaceRules = {
    defaultName: `${face}@${hostname()}:${process.pid}`,
    keys: WORKER_KEYS,
    hints: { maxDeliver: 'maxDeliveries', ackWaitMs: 'claimIdleMs', ackWait: 'claimIdleMs', visibilityTimeoutMs: 'claimIdleMs' },
  };
  const config = normalizeOptions<I, O>(o, runBatch, rules);
  const name = config.name;
  const claimIdleMs = o.claimIdleMs === undefined ? 10_000 : finiteMs(name, 'claimIdleMs', o.claimIdleMs, 10);
  const touchEveryMs = o.touchEveryMs === undefined ? Math.max(1, Math.floor(claimIdleMs / 3)) : finiteMs(name, 'touchEveryMs', o.touchEveryMs, 0);
  if (touchEveryMs >= claimIdleMs) {
    fail('range', name, `\`touchEveryMs\` (${touchEveryMs}) must be below \`claimIdleMs\` (${claimIdleMs}), or held requests get reclaimed and answered twice; claimIdleMs / 3 is a good value.`);
  }
  const onError = checkOnError(name, o.onError);
  if (o.afterReply !== undefined && typeof o.afterReply !== 'function') {
    fail('type', name, `\`afterReply\` must be a function (deliveries) => void, got ${describeValue(o.afterReply)}.`);
  }
  let expiredGraceMs = Infinity;
  if (o.expiredGraceMs === undefined) expiredGraceMs = 1000;
  else if (o.expiredGraceMs !== Infinity) expiredGraceMs = milliseconds(name, 'expiredGraceMs', o.expiredGraceMs, true);
  return {
    config,
    face: rules,
    rules: {
      claimIdleMs,
      touchEveryMs,
      maxDeliveries: o.maxDeliveries === undefined ? 5 : integerAtLeast(name, 'maxDeliveries', o.maxDeliveries, 1, false),
      expiredGraceMs,
      codec: checkCodec(name, o.codec),
      onError,
      afterReply: o.afterReply as WorkerRules['afterReply'],
      signer: checkAuth(name, o.auth),
      maxPayloadBytes: checkMaxPayloadBytes(name, o.maxPayloadBytes),
      onBrokerEvent: checkOnBrokerEvent(name, o.onBrokerEvent),
    },
  };
}

/**
 * Validates `remoteBatcher(transport, subject, options)`: the request lifecycle's options
 * (`timeoutMs`, `maxQueueSize`, `dedupeBy`, `scheduler`, `name`) through {@link normalizeOptions}, then the
 * codec. `runBatch` is the producer's own sender.
 */
export function producerOptions<I, O>(subject: unknown, options: unknown, send: RunBatch<I, O>): { config: BatchConfig<I, O>; rules: ProducerRules; face: FaceRules } {
  const face = checkSubject('remoteBatcher', subject, 'remoteBatcher(transport, subject, options)');
  const o = checkObject(face, options, '{ timeoutMs: 2000 }');
  const rules: FaceRules = {
    defaultName: face,
    keys: PRODUCER_KEYS,
    hints: { maxInFlight: 'maxQueueSize', maxPending: 'maxQueueSize' },
    // A batch per tick, not limited by slots; the batches of one event-loop turn leave in one pipelined send (Outbox).
    maxBatchSizeDefault: 1024,
    maxConcurrentBatchesDefault: Infinity,
    limitCountsRunning: true,
    timeoutHint: REMOTE_TIMEOUT_HINT,
  };
  const config = normalizeOptions<I, O>(o, send, rules);
  const name = config.name;
  return {
    config,
    face: rules,
    rules: {
      codec: checkCodec(name, o.codec),
      onError: checkOnError(name, o.onError),
      signer: checkAuth(name, o.auth),
      maxPayloadBytes: checkMaxPayloadBytes(name, o.maxPayloadBytes),
      onBrokerEvent: checkOnBrokerEvent(name, o.onBrokerEvent),
    },
  };
}

function checkOnError(name: string, value: unknown): (error: Error) => void {
  if (value === undefined) return (error) => console.warn(error.message.startsWith(prefix(name)) ? error.message : `${prefix(name)} ${error.message}`);
  if (typeof value !== 'function') fail('type', name, `\`onError\` must be a function (error) => void, got ${describeValue(value)}.`);
  return value as (error: Error) => void;
}

const AUTH_EXAMPLE = '{ keys: [currentKey, ...previousKeys] }';
const KEY_HINT = `Make one with \`openssl rand -base64 32\` (or crypto.randomBytes(32)), keep it in a secret store, and give the same keys to producers and workers.`;

/** `auth: { keys }`: every key a string or bytes of at least MIN_KEY_BYTES; the first signs. */
function checkAuth(name: string, value: unknown): Signer | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('type', name, `\`auth\` must be an object like ${AUTH_EXAMPLE}, got ${describeValue(value)}.`);
  }
  for (const key of Object.keys(value)) {
    if (key !== 'keys') {
      fail('type', name, `\`auth\` has no option \`${key}\`; its only option is \`keys\`, like ${AUTH_EXAMPLE}${key === 'key' || key === 'secret' ? ` (\`keys: [${key}]\`)` : ''}.`);
    }
  }
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    fail(Array.isArray(keys) ? 'range' : 'type', name, `\`auth.keys\` must be a non-empty array of secret keys, the current one first (it signs) and then previous ones (still accepted while a new key rolls out), got ${describeValue(keys)}.`);
  }
  const bytes = keys.map((key: unknown, i: number): Uint8Array => {
    if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
      fail('type', name, `\`auth.keys[${i}]\` must be a string or a Buffer of at least ${MIN_KEY_BYTES} bytes, got ${describeValue(key)}.`);
    }
    const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    if (b.byteLength < MIN_KEY_BYTES) {
      fail('range', name, `\`auth.keys[${i}]\` is ${b.byteLength} bytes long; a key must be at least ${MIN_KEY_BYTES} bytes of random secret. ${KEY_HINT}`);
    }
    return b;
  });
  return signerFor(bytes);
}

/** Room for an error reply (which names the limit) in a reply frame. */
const MIN_PAYLOAD_BYTES = 1024;

function checkMaxPayloadBytes(name: string, value: unknown): number {
  return value === undefined ? Infinity : integerAtLeast(name, 'maxPayloadBytes', value, MIN_PAYLOAD_BYTES, true);
}

function finiteMs(name: string, option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    fail(typeof value === 'number' ? 'range' : 'type', name, `\`${option}\` must be a finite number of milliseconds ≥ ${min}, got ${describeValue(value)}.`);
  }
  return value;
}
