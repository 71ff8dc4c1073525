/**
 * `npx tsx examples/token-budget/main.ts [texts]`: classifies a burst of mixed-length texts
 * with a real tokenizer and a real ONNX text model, under four batching policies, and prints
 * throughput, padding and the largest padded batch of each.
 */
import { comparedPolicies, formatComparison, runBacklog, type BacklogResult } from './compare';
import { MAX_TEXT_TOKENS, tokenize } from './textBatcher';
import { loadTextModel } from './textModel';
import { reviewTexts } from './workload';

const MAX_BATCH_TOKENS = 4096;

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2000);
  const texts = reviewTexts(count).map(tokenize);
  const tokens = texts.reduce((sum, ids) => sum + ids.length, 0);
  console.log(`${count} texts, ${tokens} tokens (${Math.min(...texts.map((t) => t.length))}…${Math.max(...texts.map((t) => t.length))} per text), budget ${MAX_BATCH_TOKENS} padded tokens per model call\n`);

  const model = await loadTextModel();
  const policies = comparedPolicies({ maxBatchTokens: MAX_BATCH_TOKENS, maxTextTokens: MAX_TEXT_TOKENS });
  await runBacklog(model, texts.slice(0, 200), policies[0]); // warm up the session
  const results: BacklogResult[] = [];
  for (const policy of policies) results.push(await runBacklog(model, texts, policy));
  await model.close();

  console.log(formatComparison(results));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
