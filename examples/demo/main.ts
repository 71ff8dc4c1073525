/**
 * `npm run demo`: a real speech model (Silero VAD v6) behind a streaming WebSocket server, 64
 * simulated audio streams, with and without batching. Prints progress, then a table.
 */
import { FRAMES_PER_SECOND } from '../models';
import { formatDemoTable, runVadDemo } from './vadDemo';

async function main(): Promise<void> {
  const streams = Number(process.env.DEMO_STREAMS ?? 64);
  const durationMs = Number(process.env.DEMO_SECONDS ?? 4) * 1000;
  console.log(`rx-batcher demo: ${streams} audio streams over WebSocket to a voice-activity detector (Silero VAD v6, onnxruntime-node, 1 thread).`);
  console.log(`Each stream sends a 32 ms frame of real speech and the next as soon as it is answered, for ${durationMs / 1000} s per mode.\n`);
  const results = await runVadDemo({
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
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
