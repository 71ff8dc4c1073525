import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type DefaultTheme } from 'vitepress';

const docsRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The API sidebar TypeDoc writes next to the pages it generates (`npm run docs:api`). */
function apiSidebar(): DefaultTheme.SidebarItem[] {
  const file = join(docsRoot, 'api', 'typedoc-sidebar.json');
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as DefaultTheme.SidebarItem[];
}

/** Recipe pages whose example is written by other work streams: listed only when the page exists. */
function optionalRecipes(items: { text: string; page: string }[]): DefaultTheme.SidebarItem[] {
  return items
    .filter(({ page }) => existsSync(join(docsRoot, 'recipes', `${page}.md`)))
    .map(({ text, page }) => ({ text, link: `/recipes/${page}` }));
}

const guide: DefaultTheme.SidebarItem[] = [
  {
    text: 'Guide',
    items: [
      { text: 'Getting started', link: '/guide/getting-started' },
      { text: 'How a batch is formed', link: '/guide/batch-formation' },
      { text: 'Partitions and defaults', link: '/guide/partitions-and-defaults' },
      { text: 'Cost budgets', link: '/guide/cost-budgets' },
      { text: 'Priorities', link: '/guide/priorities' },
      { text: 'Retuning at run time', link: '/guide/retuning' },
      { text: 'Dedupe', link: '/guide/dedupe' },
      { text: 'Latency target', link: '/guide/latency-target' },
      { text: 'Streaming outputs', link: '/guide/streaming' },
      { text: 'Errors', link: '/guide/errors' },
      { text: 'Cancellation and deadlines', link: '/guide/cancellation-and-deadlines' },
      { text: 'Backpressure', link: '/guide/backpressure' },
      { text: 'Stop and drain', link: '/guide/stop-and-drain' },
      { text: 'Stats', link: '/guide/stats' },
      { text: 'The batchMap operator', link: '/guide/operator' },
    ],
  },
  {
    text: 'Coming from elsewhere',
    items: [
      { text: 'Compared with other batchers', link: '/guide/comparison' },
      { text: 'Migrating from DataLoader', link: '/guide/migrating-from-dataloader' },
    ],
  },
];

const recipes: DefaultTheme.SidebarItem[] = [
  {
    text: 'Recipes',
    items: [
      { text: 'Overview', link: '/recipes/' },
      { text: 'batchMap in a stream pipeline', link: '/recipes/operator-pipeline' },
      { text: 'caikit-style model', link: '/recipes/caikit-style' },
      { text: 'Testing with virtual time', link: '/recipes/virtual-time-testing' },
      { text: 'Prometheus metrics', link: '/recipes/metrics' },
      { text: 'OpenTelemetry', link: '/recipes/opentelemetry' },
      { text: 'Text model with a token budget', link: '/recipes/token-budget' },
      { text: 'Streaming token server', link: '/recipes/token-server' },
      ...optionalRecipes([
        { text: 'Streaming VAD server', page: 'vad-server' },
        { text: 'HTTP model server', page: 'http-server' },
        { text: 'Graceful shutdown', page: 'graceful-shutdown' },
        { text: 'Scale out with Redis', page: 'scale-out-redis' },
      ]),
    ],
  },
];

export default defineConfig({
  title: 'rx-batcher',
  description: 'Turn many single async calls (model inference above all) into efficient batches, on RxJS.',
  lang: 'en-US',
  cleanUrls: true,
  lastUpdated: false,
  // Dead internal links fail the build (VitePress's default); keep it that way.
  ignoreDeadLinks: false,
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  markdown: { lineNumbers: false },
  themeConfig: {
    logo: '/favicon.svg',
    nav: [
      { text: 'Guide', link: '/guide/getting-started', activeMatch: '/guide/' },
      { text: 'Recipes', link: '/recipes/', activeMatch: '/recipes/' },
      { text: 'API', link: '/api/', activeMatch: '/api/' },
      { text: 'Benchmarks', link: '/benchmarks' },
    ],
    sidebar: {
      '/guide/': guide,
      '/recipes/': recipes,
      '/api/': [{ text: 'API reference', link: '/api/' }, ...apiSidebar()],
    },
    outline: { level: [2, 3] },
    search: { provider: 'local' },
    footer: { message: 'MIT licensed.' },
  },
});
