import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { BrokerKind } from './fixtures/makeTransport';
import { waitFor } from './brokers';

const ROOT = resolve(__dirname, '../..');
const SCRIPT = join(__dirname, 'fixtures', 'worker.ts');

/** What a worker child process reported. */
export interface ChildWorker {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Inputs of every batch it started, in order. */
  readonly batches: number[][];
  readonly exited: Promise<void>;
  /** Stops it with a draining stop and waits for it to leave. */
  stop(): Promise<void>;
  /** SIGKILL by PID. */
  kill(): Promise<void>;
  /** Lets a `RXB_MODE: 'hold-first'` worker finish its first batch. */
  release(): void;
}

/** Starts `spec/remote/fixtures/worker.ts` in a child process (node + tsx) and waits until it serves. */
export async function startChildWorker(kind: BrokerKind, url: string, subject: string, env: Record<string, string> = {}): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, RXB_TRANSPORT: kind, RXB_URL: url, RXB_SUBJECT: subject, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const batches: number[][] = [];
  let ready = false;
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((exitedFlag = true), resolve())));
  // A child that exits on its own (a crashing worker) may not have reported 'exit' yet when a
  // message is sent: the send fails with EPIPE, which without a callback is an 'error' event
  // nobody handles. Ignored: a child that did not get a stop never exits, and the test's
  // `await exited` fails it.
  const sendQuietly = (message: { type: string }): void => {
    if (exitedFlag || !child.connected) return;
    child.send(message, () => undefined);
  };
  child.on('message', (message: { type: string; inputs?: number[] }) => {
    if (message.type === 'ready') ready = true;
    if (message.type === 'batch') batches.push(message.inputs!);
  });
  await waitFor(() => ready || exitedFlag, 'a worker child process to start', 20_000);
  if (!ready) throw new Error(`the worker child process exited before it was ready (see its output above)`);
  return {
    child,
    pid: child.pid!,
    batches,
    exited,
    async stop() {
      sendQuietly({ type: 'stop' });
      await exited;
    },
    release() {
      sendQuietly({ type: 'release' });
    },
    async kill() {
      if (!exitedFlag) child.kill('SIGKILL');
      await exited;
    },
  };
}
