/**
 * Runs the streaming VAD server until Ctrl-C / SIGTERM:
 *
 *     npx tsx examples/vad-server/main.ts [port]
 *
 * Stream 16 kHz 16-bit PCM to ws://127.0.0.1:PORT (see protocol.ts) and read speech events.
 */
import { startVadServer } from './server';

async function main(): Promise<void> {
  const server = await startVadServer({ port: Number(process.argv[2] ?? 0) });
  console.log(`streaming VAD server on ${server.url} (batching across streams); Ctrl-C to stop`);
  const stop = () => {
    console.log('stopping…', server.stats());
    void server.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
