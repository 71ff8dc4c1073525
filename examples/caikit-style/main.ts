/**
 * `npx tsx examples/caikit-style/main.ts`: sends a mix of requests with optional fields and
 * different variants at once, then prints what each model call received.
 */
import { createClassifier } from './classifier';

async function main(): Promise<void> {
  const { batcher, calls } = createClassifier();
  const results = await Promise.all([
    batcher.run({ text: 'Hello there' }),
    batcher.run({ text: 'Is the contract broken?', variant: 'legal' }),
    batcher.run({ text: 'I LOVE this', lowercase: true, topK: 1 }),
    batcher.run({ text: 'Great result?', variant: 'legal', threshold: 0.5 }),
    batcher.run({ text: 'hi, bad knee', variant: 'medical', topK: undefined }),
  ]);
  await batcher.stop({ drain: true });

  for (const r of results) console.log(r.variant.padEnd(8), r.labels.map((l) => `${l.label}=${l.score}`).join(' '));
  console.log(`\n${calls.length} model calls:`);
  for (const c of calls) console.log(`  variant=${c.variant[0]} text=${JSON.stringify(c.text)} threshold=${JSON.stringify(c.threshold)} topK=${JSON.stringify(c.topK)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
