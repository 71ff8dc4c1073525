/**
 * Runs the streaming token server until SIGTERM / Ctrl-C, then lets every stream finish and exits:
 *
 *     npx tsx examples/token-server/main.ts [port]
 *     curl -N 'localhost:8080/generate?prompt=Once%20upon%20a%20time&maxTokens=40'
 */
import { startTokenServer } from './server';

async function main(): Promise<void> {
  const server = await startTokenServer({ port: Number(process.argv[2] ?? 8080) });
  console.log(`listening: GET ${server.url}/generate?prompt=…&maxTokens=… (server-sent events), ${server.url}/stats`);
  const shutdown = (): void => {
    console.log('finishing the streams in progress…');
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
