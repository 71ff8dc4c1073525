import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { startRedis, type TestBroker } from '../remote/brokers';
import { markdownFiles } from './markdownFiles';

// Every fenced ```ts block of the README and the docs, checked the way a new user reads them:
// pasted into a file of a fresh ES-module project that installed the package from `npm pack`,
// type-checked with --strict, and (when it is a whole program) run, which must exit 0.
//
// A block may start with one marker line, and few should:
//   // fragment: <why>   a piece of a larger program: neither type-checked nor run
//   // not run: <why>    a whole program that needs something the test does not start
//                        (a broker): type-checked only
//   // a server: <why>   a whole program that serves until SIGTERM: started on a free port
//                        (PORT=0), it must say "listening", then exit 0 after SIGTERM
// Blocks included from examples/ (`<<< @/…`) are not here: spec/examples runs those.
// The scale-out recipe's two sides ("needs a Redis server…") run together against a private
// redis-server: the worker in the background, then the front end, which must get its answers.

const run = promisify(execFile);
const root = join(__dirname, '..', '..');
const docs = join(root, 'docs');

interface Block {
  /** `docs/guide/x.md:12`, the line of the opening fence. */
  where: string;
  file: string;
  /** 1-based line in the markdown file of the block's first code line. */
  firstLine: number;
  code: string;
  kind: 'program' | 'server' | 'not-run' | 'fragment';
  reason?: string;
}

function blocksOf(path: string): Block[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const marker = /^\/\/ (fragment|not run|a server): (.+)$/.exec(body[0] ?? '');
    const file = relative(root, path);
    blocks.push({
      where: `${file}:${start + 1}`,
      file,
      firstLine: start + 2,
      code: body.join('\n') + '\n',
      kind: !marker ? 'program' : marker[1] === 'fragment' ? 'fragment' : marker[1] === 'a server' ? 'server' : 'not-run',
      ...(marker ? { reason: marker[2]! } : {}),
    });
  }
  return blocks;
}

const blocks = [join(root, 'README.md'), ...markdownFiles(docs)].flatMap(blocksOf);
const checked = blocks.filter((b) => b.kind !== 'fragment');
const programs = blocks.filter((b) => b.kind === 'program');
const servers = blocks.filter((b) => b.kind === 'server');
const fileName = (b: Block) => `${b.file.replace(/[/.]/g, '_')}_L${b.firstLine - 1}.ts`;

/**
 * The rest comes from this repo's node_modules as local folders (npm links them), so the
 * install needs no network: npm's cache holds the tarballs `npm ci` fetched but not the
 * registry metadata a by-name install would ask for.
 */
const local = (name: string) => join(root, 'node_modules', name);
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
/** What `node --import tsx` loads, by URL: the scratch project has no tsx of its own. */
const tsxLoader = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

let project = '';
let typeErrors: Promise<string[]>;
const outcomes = new Map<Block, Promise<{ where: string; exit: number | string; stderr?: string }>>();

/** `tsc` over every checked block at once; errors are renamed to the markdown file and line. */
async function typeCheck(): Promise<string[]> {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const output = await run(process.execPath, [tsc, '-p', '.', '--pretty', 'false'], { cwd: project }).then(
    () => '',
    (e: { stdout: string }) => e.stdout,
  );
  // `blocks/README_md_L36.ts(3,7): error TS…` → `README.md:39:7: error TS…`
  const byName = new Map(checked.map((b) => [fileName(b), b]));
  return output
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^blocks\/([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line);
      const b = m && byName.get(m[1]!);
      return b ? `${b.file}:${b.firstLine + Number(m![2]) - 1}:${m![3]}: ${m![4]}` : line;
    });
}

/** Runs one program with tsx from the scratch project, as `npx tsx file.ts` would. */
async function runProgram(b: Block) {
  return run(process.execPath, [tsx, join('blocks', fileName(b))], { cwd: project, timeout: 30_000 }).then(
    () => ({ where: b.where, exit: 0 }),
    (e: { code?: number; signal?: string; stderr?: string }) => ({ where: b.where, exit: e.code ?? e.signal ?? 'failed', stderr: (e.stderr ?? '').slice(0, 2000) }),
  );
}

/**
 * Starts a block that keeps running (a server, a worker) and waits until it prints `readyText`
 * (or exits, or 60 s pass: tsx compiles on start, slowly on a loaded machine); the test then
 * checks what it printed and stops it. The block runs with tsx's loader in the program's own
 * process (`node --import tsx`), not behind the `tsx` launcher: the launcher relays a signal
 * and, if the program has not confirmed it within 30 ms, kills it and exits 143, which on a
 * busy machine failed a server that handles SIGTERM. It runs in a process group of its own,
 * so a hard kill reaches everything it started.
 */
async function startLongRunning(b: Block, env: NodeJS.ProcessEnv, readyText: string) {
  const child = spawn(process.execPath, ['--import', tsxLoader, join('blocks', fileName(b))], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + 60_000;
  while (!output.includes(readyText) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return {
    child,
    exited,
    /** `readyText` once it was printed, else everything the block printed (for the failure message). */
    readiness: output.includes(readyText) ? readyText : output,
    /** SIGKILL to the block's whole process group, unless it has exited. */
    kill: () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already
      }
    },
  };
}

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'rx-batcher-pasted-'));
  // What a user gets: the package as `npm pack` builds it, in a project from `npm init -y`
  // plus `"type": "module"`, as getting started says.
  // Both builds, CommonJS and ES modules, as `npm run build` makes them (the project below is an ES module one).
  await run('npm', ['run', 'build', '--silent'], { cwd: root });
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', project], { cwd: root });
  const tarball = stdout.trim().split('\n').pop()!;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'pasted', version: '1.0.0', private: true, type: 'module' }, null, 2));
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', lib: ['ES2022', 'ESNext.Disposable'], module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      include: ['blocks'],
    }),
  );
  await run(
    'npm',
    ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `./${tarball}`,
      ...['rxjs', 'immer', 'ts-pattern', '@types/node', 'fastify', 'ioredis', '@nats-io/transport-node', '@nats-io/jetstream', 'dataloader'].map(local)],
    { cwd: project },
  );
  mkdirSync(join(project, 'blocks'));
  for (const b of checked) writeFileSync(join(project, 'blocks', fileName(b)), b.code);
  // Type-check and run side by side, three programs at a time: each is a process of its own.
  typeErrors = typeCheck();
  const lanes = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
  programs.forEach((b, i) => {
    const lane = i % lanes.length;
    const outcome = lanes[lane]!.then(() => runProgram(b));
    lanes[lane] = outcome.then(() => undefined);
    outcomes.set(b, outcome);
  });
}, 240_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('code blocks of the README and the docs, as pasted', () => {
  it('finds them, and few are marked as fragments', () => {
    expect(blocks.length).toBeGreaterThan(20);
    const fragments = blocks.filter((b) => b.kind === 'fragment');
    expect(fragments.length).toBeLessThanOrEqual(Math.ceil(blocks.length / 8));
  });

  it('every block that is not a fragment type-checks with --strict', async () => {
    expect(await typeErrors).toEqual([]);
  }, 120_000);

  it('the package has its LICENSE, and every source map points at a file the package ships', () => {
    const pkg = join(project, 'node_modules', 'rx-batcher');
    expect(existsSync(join(pkg, 'LICENSE'))).toBe(true);
    const maps = (readdirSync(join(pkg, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    const missing = maps.flatMap((m) => {
      const map = JSON.parse(readFileSync(join(pkg, 'dist', m), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      const dir = dirname(join(pkg, 'dist', m));
      return map.sources.filter((s, i) => !existsSync(resolve(dir, s)) || !map.sourcesContent?.[i]).map((s) => `${m}: ${s}`);
    });
    expect(missing).toEqual([]);
  });

  it('the scale-out recipe, worker and front end as pasted, works against a private Redis', async () => {
    const worker = checked.find((b) => b.reason === 'needs a Redis server');
    const front = checked.find((b) => b.reason === 'needs a Redis server and a running worker');
    expect({ worker: worker?.where, front: front?.where }).toEqual({ worker: expect.any(String), front: expect.any(String) });
    const redis: TestBroker = await startRedis();
    const env = { ...process.env, REDIS_URL: redis.url };
    const w = await startLongRunning(worker!, env, 'worker ready');
    try {
      expect({ worker: worker!.where, output: w.readiness }).toEqual({ worker: worker!.where, output: 'worker ready' });
      const { stdout } = await run(process.execPath, [tsx, join('blocks', fileName(front!))], { cwd: project, env, timeout: 30_000 });
      expect(stdout).toContain('[ 3, 7, 11 ]');
      w.child.kill('SIGTERM'); // the worker drains and exits by itself
      expect({ worker: worker!.where, exit: await w.exited }).toEqual({ worker: worker!.where, exit: 0 });
    } finally {
      w.kill();
      await redis.stop();
    }
  }, 150_000);

  it.each(servers.map((b) => [b.where, b] as const))('%s starts, listens, and exits 0 on SIGTERM', async (_where, b) => {
    const server = await startLongRunning(b, { ...process.env, PORT: '0' }, 'listening');
    try {
      expect({ where: b.where, output: server.readiness }).toEqual({ where: b.where, output: 'listening' });
      server.child.kill('SIGTERM');
      expect({ where: b.where, exit: await server.exited }).toEqual({ where: b.where, exit: 0 });
    } finally {
      server.kill();
    }
  }, 120_000);

  it.each(programs.map((b) => [b.where, b] as const))('%s runs and exits 0', async (_where, b) => {
    expect(await outcomes.get(b)).toEqual({ where: b.where, exit: 0 });
  }, 120_000);
});
