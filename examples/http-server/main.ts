/**
 * Runs the batched HTTP model server until SIGTERM / Ctrl-C, then drains and exits:
 *
 *     npx tsx examples/http-server/main.ts [port]
 *     curl -s localhost:8080/vad -H 'content-type: application/json' \
 *       -d "{\"samples\": $(node -p 'JSON.stringify(Array(576).fill(0))')}"
 */
import { startHttpModelServer } from './server';

async function main(): Promise<void> {
  const server = await startHttpModelServer({ port: Number(process.argv[2] ?? 8080) });
  console.log(`POST frames to ${server.url}/vad (see codec.ts for the formats); SIGTERM drains and exits`);
  const shutdown = () => {
    console.log('draining…');
    server.shutdown().then(
      () => console.log('stopped', server.stats()),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
