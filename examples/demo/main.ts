/**
 * `npm run demo`: a real speech model (Silero VAD v6) behind a streaming WebSocket server, 64
 * simulated audio streams, with and without batching, then more live streams than it can serve
 * in real time (the newest are told `overloaded`). Prints progress, a table and the overload lines.
 */
import { FRAMES_PER_SECOND, loadSileroVad } from '../models';
import { formatDemoTable, formatOverload, runOverloadDemo, runVadDemo } from './vadDemo';

async function main(): Promise<void> {
  const streams = Number(process.env.DEMO_STREAMS ?? 64);
  const durationMs = Number(process.env.DEMO_SECONDS ?? 4) * 1000;
  console.log(`rx-batcher demo: ${streams} audio streams over WebSocket to a voice-activity detector (Silero VAD v6, onnxruntime-node, 1 thread).`);
  console.log(`Each stream sends a 32 ms frame of real speech and the next as soon as it is answered, for ${durationMs / 1000} s per mode.\n`);
  const vad = await loadSileroVad();
  const results = await runVadDemo({
    vad,
    streams,
    durationMs,
    onProgress: (label, frames, elapsedMs) => {
      const line = `  ${label}: ${frames} frames scored in ${(elapsedMs / 1000).toFixed(1)} s`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
      else console.log(line);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`\n${formatDemoTable(results)}\n`);
  const [unbatched, batched] = results;
  console.log(`A live 16 kHz stream needs ${FRAMES_PER_SECOND} frames/s ("real-time streams" = frames/s ÷ ${FRAMES_PER_SECOND}).`);
  console.log(`Batching across streams served ${(batched.framesPerSecond / unbatched.framesPerSecond).toFixed(1)}x the frames per second on the same model and CPU.`);

  // More live streams than that: the server keeps the oldest in real time and tells the rest.
  const live = Number(process.env.DEMO_LIVE_STREAMS ?? Math.max(8, 2 * batched.realtimeStreams));
  console.log(`\nOverload: ${live} live streams (about twice what batching served in real time), each sending a 32 ms frame every 32 ms for ${durationMs / 1000} s.`);
  console.log('The server keeps no stream more than 1 s behind real time: it lets the newest go (overloaded, close 1013) so the older stay live.');
  const overload = await runOverloadDemo({
    vad,
    streams: live,
    durationMs,
    onProgress: (frames, elapsedMs) => {
      const line = `  ${frames} frames scored in ${(elapsedMs / 1000).toFixed(1)} s`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
      else console.log(line);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(formatOverload(overload));
  await vad.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
