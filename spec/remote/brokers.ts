import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A private broker for tests: started from the binary on PATH in a temp folder, on a unix
 * socket (Redis) or a free loopback port (NATS), stopped by PID. Never the system instance.
 */
export interface TestBroker {
  /** What the transport connects to: a socket path (Redis) or `nats://127.0.0.1:port`. */
  readonly url: string;
  /** The broker process's PID (e.g. to read its CPU time). */
  pid(): number;
  /**
   * Stops the broker gracefully (it persists its data) and starts it again on the same address;
   * with `crash`, kills it (SIGKILL) instead: it keeps only what it had written to disk.
   */
  restart(options?: { crash?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** Finds a broker binary on PATH (and the sbin folders, where Debian puts nats-server); fails loudly. */
export function findBinary(name: string, installHint: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} was not found on PATH, so this broker test cannot run. Install it (${installHint}) or run .ci/run, which installs it.`);
}

interface Started {
  child: ChildProcess;
  output: string;
}

/** Spawns a broker and resolves when its log says it is ready; rejects with its log if it exits first. */
function launch(binary: string, args: string[], ready: RegExp, timeoutMs = 15_000): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const started: Started = { child, output: '' };
    // If this process exits without stopping it (a forced exit), take the broker down too.
    const onExit = (): void => void child.kill('SIGKILL');
    process.once('exit', onExit);
    child.once('exit', () => process.removeListener('exit', onExit));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${binary} did not become ready within ${timeoutMs} ms. Its log:\n${started.output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      started.output += chunk.toString();
      if (ready.test(started.output)) {
        clearTimeout(timer);
        resolve(started);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${binary} could not be started: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited (${code ?? signal}) before it was ready. Its log:\n${started.output}`));
    });
  });
}

/** Stops one process by its PID: SIGTERM, then SIGKILL if it lingers (or SIGKILL at once: a crash). */
async function terminate(child: ChildProcess, crash = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(crash ? 'SIGKILL' : 'SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Makes a temp folder for a broker's data, removed when the broker stops or this process exits. */
async function dataDir(name: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `rxb-${name}-`));
  const onExit = (): void => rmSync(path, { recursive: true, force: true });
  process.once('exit', onExit);
  return {
    path,
    async remove() {
      process.removeListener('exit', onExit);
      await rm(path, { recursive: true, force: true });
    },
  };
}

/**
 * A private `redis-server` on a unix socket in a temp folder, with an append-only file so a
 * restart keeps the streams. `appendfsync: 'always'` makes every write durable before Redis
 * answers it, so even a crash (`restart({ crash: true })`) loses nothing acknowledged.
 */
export async function startRedis(options: { appendfsync?: 'always' | 'everysec' } = {}): Promise<TestBroker> {
  const binary = findBinary('redis-server', 'apt-get install -y redis-server');
  const data = await dataDir('redis');
  const dir = data.path;
  const socket = join(dir, 'redis.sock');
  const args = [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir,
    '--save', '', '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec', '--loglevel', 'notice',
  ];
  let current = await launch(binary, args, /ready to accept connections/i);
  return {
    url: socket,
    pid: () => current.child.pid!,
    async restart(restartOptions) {
      await terminate(current.child, restartOptions?.crash);
      current = await launch(binary, args, /ready to accept connections/i);
    },
    async stop() {
      await terminate(current.child);
      await data.remove();
    },
  };
}

/**
 * A private `nats-server -js` on a free loopback port, storing JetStream data in a temp folder.
 * `config`: the text of a server configuration file (e.g. an `authorization` block with users
 * and permissions); the address, JetStream and its folder still come from the command line.
 */
export async function startNats(config?: string): Promise<TestBroker> {
  const binary = findBinary('nats-server', 'apt-get install -y nats-server');
  const data = await dataDir('nats');
  const dir = data.path;
  const configArgs: string[] = [];
  if (config !== undefined) {
    await writeFile(join(dir, 'nats.conf'), config);
    configArgs.push('-c', join(dir, 'nats.conf'));
  }
  const argsFor = (port: string): string[] => [...configArgs, '-a', '127.0.0.1', '-p', port, '-js', '-sd', join(dir, 'js')];
  let current = await launch(binary, argsFor('-1'), /Server is ready/);
  const port = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(current.output)?.[1];
  if (port === undefined) {
    await terminate(current.child);
    await data.remove();
    throw new Error(`nats-server started but its log names no client port:\n${current.output}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: () => current.child.pid!,
    async restart(restartOptions) {
      await terminate(current.child, restartOptions?.crash);
      current = await launch(binary, argsFor(port), /Server is ready/);
    },
    async stop() {
      await terminate(current.child);
      await data.remove();
    },
  };
}

/** Polls `condition` until it holds (an event we cannot subscribe to, e.g. in another process or the broker). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
