/**
 * `npm run test:browser`: opens the BUILT docs site in Debian's Chromium (driven by
 * playwright-core) and walks Home → Getting started → Recipes → a recipe → API → the
 * rx-batcher module → the Batcher class, the way a reader would: by clicking. On every page it
 * checks the heading, that code blocks are present where they should be, and that nothing
 * logged a console error or failed a request. Then it loads pages directly (server-rendered
 * HTML + hydration) with the same checks. Screenshots go to spec/browser/screenshots/
 * (git-ignored), including `<step>-FAILED.png` of the page a failed step was on.
 *
 * Every step WAITS for what it checks, never sleeps: VitePress's router changes the URL
 * (history.pushState) before it has loaded and swapped in the new page's content, so a step
 * waits until the URL, the h1 and the rendered content all belong to the expected page, and
 * only then counts code blocks or clicks the next link (so a click cannot land on a link of
 * the page before). The timeouts are upper bounds only, generous for a busy 2-core machine.
 *
 * Needs `/usr/bin/chromium` (`apt-get install -y chromium`); builds the site first if
 * docs/.vitepress/dist is missing. Exits non-zero on the first failed check, naming the step,
 * the page it was on (URL and visible h1) and what it expected.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serveStatic, type StaticSite } from './staticServer';

const repo = join(__dirname, '..', '..');
const dist = join(repo, 'docs', '.vitepress', 'dist');
const screenshots = join(__dirname, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
/** Upper bound of every wait (page shown, click, screenshot): reached only when something is wrong. */
const TIMEOUT_MS = 30_000;

/** One page of the walk: where we expect to land and what the page must show. */
interface Stop {
  readonly name: string;
  readonly path: string;
  /** The h1 starts with this (the home hero's h1 goes on with the tagline). */
  readonly heading: string;
  /** The fewest code blocks the page must render. */
  readonly minCodeBlocks: number;
}

const HOME: Stop = { name: 'home', path: '/', heading: 'rx-batcher', minCodeBlocks: 2 };
const GUIDE: Stop = { name: 'guide', path: '/guide/getting-started', heading: 'Getting started', minCodeBlocks: 3 };
const RECIPES: Stop = { name: 'recipes', path: '/recipes/', heading: 'Recipes', minCodeBlocks: 1 };
const RECIPE: Stop = { name: 'recipe', path: '/recipes/operator-pipeline', heading: 'batchMap in a stream pipeline', minCodeBlocks: 3 };
// The API index and the module page have the same h1 ("rx-batcher"): only the URL and the
// rendered content (see waitForPage) tell them apart.
const API_INDEX: Stop = { name: 'api-index', path: '/api/', heading: 'rx-batcher', minCodeBlocks: 0 };
const MODULE: Stop = { name: 'module', path: '/api/rx-batcher/', heading: 'rx-batcher', minCodeBlocks: 0 };
const API: Stop = { name: 'api', path: '/api/rx-batcher/classes/Batcher', heading: 'Class: Batcher<I, O>', minCodeBlocks: 2 };

/** Pages loaded directly; the Benchmarks page renders build-time data (present or not). */
const DIRECT: readonly Stop[] = [
  HOME, GUIDE, RECIPE, API,
  { name: 'benchmarks', path: '/benchmarks', heading: 'Benchmarks', minCodeBlocks: 0 },
  { name: 'comparison', path: '/guide/comparison', heading: 'Compared with other batchers', minCodeBlocks: 0 },
];

/** The h1 the reader sees: the doc page's, or the home hero's. */
const H1_SELECTOR = '.vp-doc h1, .VPHero h1';
const CODE_BLOCK_SELECTOR = 'div[class*="language-"] pre code';

/** A failed check; `step` adds where it happened. */
class CheckFailed extends Error {}
/** A failure already described with its step and page: passed on as it is. */
class StepFailed extends Error {}

function check(condition: boolean, message: string): void {
  if (!condition) throw new CheckFailed(message);
}

function describeStop(stop: Stop): string {
  return `${stop.path} with h1 ${JSON.stringify(stop.heading)}`;
}

/** Collects console errors, page errors and failed requests of one page. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console error: ${msg.text()}`));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => res.status() >= 400 && problems.push(`HTTP ${res.status()}: ${res.url()}`));
  return problems;
}

async function newPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT_MS);
  page.setDefaultNavigationTimeout(TIMEOUT_MS);
  return page;
}

/** Where the page is now: its URL and the h1 it shows (read at once, without waiting). */
async function whereIs(page: Page): Promise<string> {
  const h1 = await page
    .evaluate((selector) => {
      const shown = document.querySelector<HTMLElement>(selector)
        ?? Array.from(document.querySelectorAll<HTMLElement>('h1')).find((h) => h.checkVisibility());
      return shown === undefined || shown === null ? null : shown.innerText.replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();
    }, H1_SELECTOR)
    .catch(() => null);
  return `${page.url()} (visible h1: ${h1 === null ? 'none' : JSON.stringify(h1)})`;
}

/**
 * Runs one step of the walk. A failure names the step, what it expected, the page it was on
 * (URL and visible h1) and a screenshot of that page.
 */
async function step(page: Page, label: string, expected: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof StepFailed) throw error;
    const reason = error instanceof CheckFailed ? error.message
      : error instanceof Error ? error.message.split('\n')[0] // Playwright's call log follows the first line
        : String(error);
    const where = await whereIs(page);
    const file = join(screenshots, `${label}-FAILED.png`);
    const saved = await page.screenshot({ path: file, fullPage: true }).then(() => true, () => false);
    throw new StepFailed([
      `browser test failed in step ${label}: ${reason}`,
      `  expected: ${expected}`,
      `  page:     ${where}`,
      `  screenshot: ${saved ? relative(repo, file) : 'could not be taken'}`,
    ].join('\n'));
  }
}

/**
 * Waits until `stop` is the page shown: the URL is its path, the h1 starts with its heading,
 * and the rendered content is that route's. The last matters because VitePress updates the URL
 * before it swaps the content, and two pages (the API index and the module page) have the same
 * h1: its default theme tags the content element (`.vp-doc`) with a class made from the route
 * the content belongs to (`/api/rx-batcher/` → `_api_rx-batcher_`); the home layout has none.
 */
async function waitForPage(page: Page, stop: Stop): Promise<void> {
  const shown = await page
    .waitForFunction(({ path, heading, h1Selector }) => {
      const current = location.pathname.replace(/\.html$/, '');
      if (current !== path) return false;
      const h1 = document.querySelector<HTMLElement>(h1Selector);
      if (h1 === null || !h1.checkVisibility()) return false;
      const text = h1.innerText.replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();
      if (!text.startsWith(heading)) return false;
      const routeClass = location.pathname.replace(/[./]+/g, '_').replace(/_html$/, '');
      const content = document.querySelector('.vp-doc');
      const contentRoute = content === null ? undefined : Array.from(content.classList).find((c) => c.startsWith('_'));
      return contentRoute === undefined || contentRoute === routeClass;
    }, { path: stop.path, heading: stop.heading, h1Selector: H1_SELECTOR }, { polling: 50, timeout: TIMEOUT_MS })
    .then(() => true, (error: unknown) => {
      if (error instanceof Error && error.name === 'TimeoutError') return false;
      throw error;
    });
  check(shown, `the page ${describeStop(stop)} was not shown within ${TIMEOUT_MS / 1000} s`);
}

/** Waits until the shown page has rendered at least `min` code blocks, and returns how many. */
async function waitForCodeBlocks(page: Page, min: number): Promise<number> {
  const enough = await page
    .waitForFunction(({ selector, min }) => document.querySelectorAll(selector).length >= min,
      { selector: CODE_BLOCK_SELECTOR, min }, { polling: 50, timeout: TIMEOUT_MS })
    .then(() => true, (error: unknown) => {
      if (error instanceof Error && error.name === 'TimeoutError') return false;
      throw error;
    });
  const count = await page.locator(CODE_BLOCK_SELECTOR).count();
  check(enough, `${count} code blocks after ${TIMEOUT_MS / 1000} s, expected at least ${min}`);
  return count;
}

/**
 * Checks the page `stop`, once it is the one shown: heading, code blocks, no problems so far;
 * then screenshots it. `extra` runs further checks on the same page.
 */
async function checkStop(page: Page, stop: Stop, problems: string[], label: string, extra?: () => Promise<void>): Promise<void> {
  await step(page, label, describeStop(stop), async () => {
    await waitForPage(page, stop);
    const codeBlocks = await waitForCodeBlocks(page, stop.minCodeBlocks);
    await extra?.();
    await page.waitForLoadState('networkidle');
    check(problems.length === 0, problems.join('; '));
    const heading = (await page.locator(H1_SELECTOR).first().innerText()).replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();
    await page.screenshot({ path: join(screenshots, `${label}.png`), fullPage: stop.name === 'home' });
    console.log(`  ok  ${label.padEnd(17)} ${stop.path.padEnd(32)} "${heading}", ${codeBlocks} code blocks`);
  });
}

/** Clicks a link on the page shown (already checked by the step before) and checks where it leads. */
async function clickTo(page: Page, problems: string[], label: string, link: string, click: () => Promise<void>, to: Stop): Promise<void> {
  await step(page, label, `a click on ${link} to lead to ${describeStop(to)}`, click);
  await checkStop(page, to, problems, label);
}

/** Home → Getting started → Recipes → a recipe → API → the module → the Batcher class, by clicking. */
async function walkByClicking(browser: Browser, site: StaticSite): Promise<void> {
  const page = await newPage(browser);
  const problems = watchProblems(page);
  const docLink = (text: string | RegExp) => page.locator('.vp-doc a', { hasText: text }).first();
  const navLink = (text: string) => page.locator('.VPNavBar a', { hasText: text }).first();

  await step(page, '1-home', `${site.url}${HOME.path} to load`, async () => {
    await page.goto(site.url + HOME.path);
  });
  await checkStop(page, HOME, problems, '1-home', async () => {
    const diagram = await page
      .waitForFunction(() => {
        const img = document.querySelector<HTMLImageElement>('img[src$="pipeline.svg"]');
        return img !== null && img.complete && img.naturalWidth > 0;
      }, undefined, { polling: 50, timeout: TIMEOUT_MS })
      .then(() => true, () => false);
    check(diagram, 'the pipeline diagram did not load');
  });

  // Each click happens only after the page it is on was checked as the one shown.
  await clickTo(page, problems, '2-guide', 'the hero\'s "Get started"',
    () => page.locator('.VPHero a', { hasText: 'Get started' }).click(), GUIDE);
  await clickTo(page, problems, '3-recipes', 'the nav bar\'s "Recipes"', () => navLink('Recipes').click(), RECIPES);
  await clickTo(page, problems, '4-recipe', 'the link "batchMap in a stream pipeline"',
    () => docLink('batchMap in a stream pipeline').click(), RECIPE);
  await clickTo(page, problems, '5-api-index', 'the nav bar\'s "API"', () => navLink('API').click(), API_INDEX);
  await clickTo(page, problems, '6-module', 'the link "rx-batcher" (the core module)', () => docLink(/^rx-batcher$/).click(), MODULE);
  await clickTo(page, problems, '7-api', 'the link "Batcher"', () => docLink(/^Batcher$/).click(), API);
  await page.close();
}

/** Each page loaded directly: the server-rendered HTML must hydrate without errors. */
async function loadDirectly(browser: Browser, site: StaticSite): Promise<void> {
  for (const stop of DIRECT) {
    const page = await newPage(browser);
    const problems = watchProblems(page);
    const label = `direct-${stop.name}`;
    await step(page, label, `${site.url}${stop.path} to load`, async () => {
      await page.goto(site.url + stop.path);
    });
    await checkStop(page, stop, problems, label);
    await page.close();
  }
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's Chromium with "apt-get install -y chromium" (or set CHROMIUM_PATH)`);
  }
  if (!existsSync(join(dist, 'index.html'))) {
    console.log('docs/.vitepress/dist is missing: building the site first (npm run docs:build)');
    const build = spawnSync('npm', ['run', 'docs:build'], { cwd: repo, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run docs:build failed');
  }
  mkdirSync(screenshots, { recursive: true });

  const started = performance.now();
  const site = await serveStatic(dist);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
    console.log(`Docs site at ${site.url}, Chromium ${browser.version()}`);
    await walkByClicking(browser, site);
    await loadDirectly(browser, site);
  } finally {
    await browser?.close();
    await site.close();
  }
  console.log(`Browser test passed in ${((performance.now() - started) / 1000).toFixed(1)} s; screenshots in spec/browser/screenshots/`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
