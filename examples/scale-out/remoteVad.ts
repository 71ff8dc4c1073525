import type { RemoteBatcher } from 'rx-batcher/remote';
import type { SileroFrame, SileroResult, SileroVad } from '../models';

/**
 * A Silero VAD that runs on remote workers: every frame goes through `scorer` (a
 * `remoteBatcher`) to whichever worker pulls it. It has the shape of a loaded model, so the
 * streaming VAD server (`examples/vad-server`) uses it unchanged — as a front end with no
 * model of its own, whose frames meet frames of every other front end in the workers' batches.
 *
 * @example
 * ```ts
 * const scorer = remoteBatcher<SileroFrame, SileroResult>(redisTransport({ url }), 'vad', { timeoutMs: 5000 });
 * const server = await startVadServer({ batching: false, vad: remoteSileroVad(scorer) });
 * ```
 */
export function remoteSileroVad(scorer: RemoteBatcher<SileroFrame, SileroResult>): SileroVad {
  let calls = 0;
  let frames = 0;
  const runBatch = (batch: readonly SileroFrame[]): Promise<SileroResult[]> => {
    calls++;
    frames += batch.length;
    return Promise.all(batch.map((frame) => scorer.run(frame)));
  };
  return {
    runBatch,
    runOne: async (frame) => (await runBatch([frame]))[0],
    counts: () => ({ calls, frames }),
    close: () => scorer.stop({ drain: true }),
  };
}
