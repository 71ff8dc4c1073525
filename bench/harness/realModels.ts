import { join } from 'node:path';
import {
  INPUT_SAMPLES,
  MLP_INPUTS,
  STATE_SAMPLES,
  loadMlp,
  loadSileroVad,
  seededRandom,
  type SileroFrame,
  type SileroResult,
} from '../../examples/models';
import type { BenchModel } from '../impls/types';
import type { RealModelName } from './tasks';

/**
 * A loaded real model with ready-made distinct inputs and a way to compare two outputs.
 *
 * @example
 * ```ts
 * const real = await loadRealModel('mlp', repoRoot, 256);
 * const diff = real.maxAbsDiff(await real.model.runOne(real.inputs[0]), reference);
 * ```
 */
export interface RealModel {
  readonly name: RealModelName;
  readonly model: BenchModel<unknown, unknown>;
  /** Distinct inputs (seeded, the same in every process); requests cycle through them. */
  readonly inputs: readonly unknown[];
  /** The largest absolute difference between two outputs of this model. */
  readonly maxAbsDiff: (a: unknown, b: unknown) => number;
  readonly close: () => Promise<void>;
}

/**
 * Loads one of the scenario-5 models through the shared loaders in `examples/models` (one
 * onnxruntime thread). The MLP file is generated on first use under `.cache/models/`.
 *
 * @example
 * ```ts
 * const silero = await loadRealModel('silero', process.cwd(), 256);
 * ```
 */
export async function loadRealModel(name: RealModelName, repoRoot: string, distinctInputs: number): Promise<RealModel> {
  const random = seededRandom(name === 'silero' ? 16_000 : 256);
  if (name === 'silero') {
    const vad = await loadSileroVad();
    const inputs: SileroFrame[] = Array.from({ length: distinctInputs }, () => ({
      samples: Float32Array.from({ length: INPUT_SAMPLES }, () => (random() * 2 - 1) * 0.3),
      state: Float32Array.from({ length: STATE_SAMPLES }, () => (random() * 2 - 1) * 0.5),
    }));
    return {
      name,
      model: vad as unknown as BenchModel<unknown, unknown>,
      inputs,
      maxAbsDiff: (a, b) => {
        const x = a as SileroResult;
        const y = b as SileroResult;
        return Math.max(Math.abs(x.probability - y.probability), maxAbsDiffOf(x.state, y.state));
      },
      close: vad.close,
    };
  }
  const mlp = await loadMlp({ path: join(repoRoot, '.cache', 'models', 'mlp.onnx') });
  const inputs = Array.from({ length: distinctInputs }, () => Float32Array.from({ length: MLP_INPUTS }, () => random() * 2 - 1));
  return {
    name,
    model: mlp as unknown as BenchModel<unknown, unknown>,
    inputs,
    maxAbsDiff: (a, b) => maxAbsDiffOf(a as Float32Array, b as Float32Array),
    close: mlp.close,
  };
}

function maxAbsDiffOf(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
