import { randomBytes } from 'node:crypto';
import { waitFor } from './brokers';
import { memoryTransport, remoteBatcher, RemoteBatchError, serveBatches, type BatchTransport, type RequestMessage } from '../../lib/remote';

// The options of signing (`auth`) and payload limits (`maxPayloadBytes`), validated once with
// exact messages; and what travels when signing is on or off. The attacks themselves are in
// the transport contract (spec/remote/contract.ts), on every broker.
describe('remote security options', () => {
  const double = (xs: readonly number[]): number[] => xs.map((x) => 2 * x);
  const t = memoryTransport();
  const producerError = (options: unknown): Error => {
    try {
      remoteBatcher(t, 'scorer', options as never);
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected remoteBatcher to throw');
  };
  const workerError = (options: unknown): Promise<Error> =>
    serveBatches(t, 'scorer', double, { maxBatchSize: 4, name: 'w', ...(options as object) } as never).then(
      () => { throw new Error('expected serveBatches to reject'); },
      (error: Error) => error,
    );
  const hint = 'Make one with `openssl rand -base64 32` (or crypto.randomBytes(32)), keep it in a secret store, and give the same keys to producers and workers.';

  it.each([
    ['null', null, TypeError, '`auth` must be an object like { keys: [currentKey, ...previousKeys] }, got null.'],
    ['a string', 'secret', TypeError, '`auth` must be an object like { keys: [currentKey, ...previousKeys] }, got "secret" (string).'],
    ['`key` instead of `keys`', { key: 'k' }, TypeError, '`auth` has no option `key`; its only option is `keys`, like { keys: [currentKey, ...previousKeys] } (`keys: [key]`).'],
    ['no keys', {}, TypeError, '`auth.keys` must be a non-empty array of secret keys, the current one first (it signs) and then previous ones (still accepted while a new key rolls out), got undefined.'],
    ['an empty list', { keys: [] }, RangeError, '`auth.keys` must be a non-empty array of secret keys, the current one first (it signs) and then previous ones (still accepted while a new key rolls out), got an array of length 0 (object).'],
    ['a number as key', { keys: [42] }, TypeError, '`auth.keys[0]` must be a string or a Buffer of at least 32 bytes, got 42 (number).'],
    ['a short second key', { keys: [randomBytes(32), 'short'] }, RangeError, `\`auth.keys[1]\` is 5 bytes long; a key must be at least 32 bytes of random secret. ${hint}`],
    ['31 bytes', { keys: [new Uint8Array(31)] }, RangeError, `\`auth.keys[0]\` is 31 bytes long; a key must be at least 32 bytes of random secret. ${hint}`],
  ])('auth with %s is refused with a message saying what to do, on both faces', async (_case, auth, type, message) => {
    const p = producerError({ auth });
    expect(p).toBeInstanceOf(type);
    expect(p.message).toBe(`[rx-batcher] "scorer": ${message}`);
    const w = await workerError({ auth });
    expect(w).toBeInstanceOf(type);
    expect(w.message).toBe(`[rx-batcher] "w": ${message}`);
  });

  it.each([
    ['1k', TypeError, '"1k" (string)'],
    [1023, RangeError, '1023 (number)'],
    [2048.5, RangeError, '2048.5 (number)'],
  ])('maxPayloadBytes %p is refused', async (maxPayloadBytes, type, shown) => {
    const message = `\`maxPayloadBytes\` must be an integer ≥ 1024 or Infinity, got ${shown}.`;
    expect(producerError({ maxPayloadBytes })).toEqual(new type(`[rx-batcher] "scorer": ${message}`));
    expect(await workerError({ maxPayloadBytes })).toEqual(new type(`[rx-batcher] "w": ${message}`));
  });

  it('a producer’s onError must be a function', () => {
    expect(producerError({ onError: 'log' })).toEqual(new TypeError('[rx-batcher] "scorer": `onError` must be a function (error) => void, got "log" (string).'));
  });

  it('a 32-byte string key, Buffers and Uint8Arrays are accepted; auth and maxPayloadBytes are per face options', async () => {
    const key = 'k'.repeat(32);
    const p = remoteBatcher(t, 'ok', { auth: { keys: [key, randomBytes(40), new Uint8Array(32)] }, maxPayloadBytes: 1024 });
    const w = await serveBatches(t, 'ok', double, { maxBatchSize: 2, auth: { keys: [key] }, maxPayloadBytes: Infinity });
    await Promise.all([p.stop(), w.stop()]);
  });

  /** A memory transport that records what producers send. */
  const recording = (): { transport: BatchTransport; sent: RequestMessage[] } => {
    const inner = memoryTransport();
    const sent: RequestMessage[] = [];
    return {
      sent,
      transport: {
        ...inner,
        async openProducer(subject, onReplies) {
          const link = await inner.openProducer(subject, onReplies);
          return { replyTo: link.replyTo, send: (ms) => (sent.push(...ms), link.send(ms)), close: () => link.close() };
        },
      },
    };
  };

  it('without auth a request carries no MAC field; with auth every request carries 32 bytes of MAC, made once its reply address is known', async () => {
    const plain = recording();
    const w1 = await serveBatches(plain.transport, 'plain', double, { maxBatchSize: 4 });
    const p1 = remoteBatcher<number, number>(plain.transport, 'plain');
    await expect(p1.run(2)).resolves.toBe(4);
    expect(plain.sent.map((m) => Object.keys(m).sort())).toEqual([['body', 'id', 'replyTo']]);

    const signed = recording();
    const auth = { keys: [randomBytes(32)] };
    const w2 = await serveBatches(signed.transport, 'signed', double, { maxBatchSize: 4, auth });
    const p2 = remoteBatcher<number, number>(signed.transport, 'signed', { auth });
    await expect(Promise.all([p2.run(2), p2.run(3, { priority: 1, context: 'c', timeoutMs: 60_000 })])).resolves.toEqual([4, 6]);
    expect(signed.sent.map((m) => m.mac?.byteLength)).toEqual([32, 32]);
    expect(signed.sent.every((m) => m.replyTo !== '')).toBe(true);
    await Promise.all([p1.stop(), w1.stop(), p2.stop(), w2.stop()]);
  });

  it('a worker with auth drops what a producer without it sends; a producer with auth drops what a worker without it answers', async () => {
    const auth = { keys: [randomBytes(32)] };
    const errors: string[] = [];
    const w = await serveBatches(t, 'mismatch', double, { maxBatchSize: 4, auth, onError: (e) => errors.push(e.message) });
    const forgedSeen: number[] = [];
    const watching = w.stats$.subscribe((s) => forgedSeen.push(s.forged));
    const p = remoteBatcher<number, number>(t, 'mismatch');
    const gone = new AbortController();
    const unsigned = p.run(1, { signal: gone.signal });
    await waitFor(() => w.stats().forged === 1, 'the unsigned request to be dropped');
    gone.abort();
    await expect(unsigned).rejects.toBeDefined();
    expect(w.stats()).toMatchObject({ forged: 1, succeeded: 0, rejected: 0 });
    expect(forgedSeen).toEqual([0, 1]); // stats$ reports the drop, though the engine never saw the request
    watching.unsubscribe();
    expect(errors).toHaveLength(1);
    await w.stop();

    const w2 = await serveBatches(t, 'mismatch2', double, { maxBatchSize: 4 });
    const p2 = remoteBatcher<number, number>(t, 'mismatch2', { auth, onError: (e) => errors.push(e.message) });
    const gone2 = new AbortController();
    const unanswered = p2.run(1, { signal: gone2.signal });
    await waitFor(() => p2.stats().forged === 1, 'the unsigned reply to be dropped');
    gone2.abort();
    await expect(unanswered).rejects.toBeDefined();
    expect(p2.stats()).toMatchObject({ forged: 1, succeeded: 0 });
    await Promise.all([p.stop(), p2.stop(), w2.stop()]);
  });

  it('the producer’s default onError warns once per dropped frame, with the batcher’s name once', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const w = await serveBatches(t, 'warned', double, { maxBatchSize: 4 });
      const p = remoteBatcher<number, number>(t, 'warned', { auth: { keys: [randomBytes(32)] } });
      const gone = new AbortController();
      const call = p.run(1, { signal: gone.signal });
      await waitFor(() => p.stats().forged === 1, 'the unsigned reply to be dropped');
      gone.abort();
      await expect(call).rejects.toBeDefined();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toMatch(/^\[rx-batcher\] "warned": dropped a reply frame of \d+ bytes whose signature is missing/);
      await Promise.all([p.stop(), w.stop()]);
    } finally {
      warn.mockRestore();
    }
  });

  it('an input over maxPayloadBytes fails only its own call; the rest of the tick is sent', async () => {
    const w = await serveBatches(t, 'sizes', double, { maxBatchSize: 4 });
    const p = remoteBatcher<unknown, unknown>(t, 'sizes', { maxPayloadBytes: 1024 });
    const [small, big, withContext] = await Promise.allSettled([p.run(1), p.run('x'.repeat(2000)), p.run(2, { context: 'c'.repeat(1100) })]);
    expect(small).toEqual({ status: 'fulfilled', value: 2 });
    expect((big as PromiseRejectedResult).reason).toBeInstanceOf(RemoteBatchError);
    expect((big as PromiseRejectedResult).reason).toMatchObject({ kind: 'payload-too-large', remoteName: 'PayloadTooLarge' });
    expect((withContext as PromiseRejectedResult).reason.remoteMessage).toMatch(/^this input with its context encodes to \d+ bytes, over maxPayloadBytes \(1024\); it was not sent$/);
    expect(p.stats()).toMatchObject({ succeeded: 1, failed: 2 });
    await Promise.all([p.stop(), w.stop()]);
  });
});
