import { mkdirSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { float32Output, openSession } from './onnxSession';
import { seededRandom } from './seededRandom';

export { seededRandom };

/** Features per MLP input. */
export const MLP_INPUTS = 256;
/** Width of both hidden layers. */
export const MLP_HIDDEN = 1024;
/** Scores per MLP output. */
export const MLP_OUTPUTS = 10;

/**
 * Where the generated MLP lives by default: `.cache/models/mlp.onnx` under the repository
 * (ignored by git), computed from this file's location.
 *
 * @example
 * ```ts
 * const path = defaultMlpPath();
 * ```
 */
export function defaultMlpPath(): string {
  return resolve(__dirname, '..', '..', '.cache', 'models', 'mlp.onnx');
}

function floatInitializer(name: string, dims: number[], next: () => number, scale: number): onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (next() * 2 - 1) * scale;
  return {
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function floatValueInfo(name: string, columns: number): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'N' }, { dimValue: columns }] },
      },
    },
  };
}

/**
 * Builds the MLP 256→1024→1024→10 (MatMul + Add + Relu, dynamic batch dimension `N`, opset 17,
 * IR 8) with seeded uniform weights and returns the serialized ONNX model.
 *
 * @example
 * ```ts
 * writeFileSync('mlp.onnx', buildMlpModel(1));
 * ```
 */
export function buildMlpModel(seed = 1): Uint8Array {
  const next = seededRandom(seed);
  const widths = [MLP_INPUTS, MLP_HIDDEN, MLP_HIDDEN, MLP_OUTPUTS];
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let current = 'input';
  for (let layer = 1; layer < widths.length; layer++) {
    const [fanIn, fanOut] = [widths[layer - 1], widths[layer]];
    const scale = Math.sqrt(6 / (fanIn + fanOut));
    initializers.push(floatInitializer(`W${layer}`, [fanIn, fanOut], next, scale), floatInitializer(`b${layer}`, [fanOut], next, 0.1));
    const last = layer === widths.length - 1;
    nodes.push({ opType: 'MatMul', input: [current, `W${layer}`], output: [`mm${layer}`], name: `matmul${layer}` });
    nodes.push({ opType: 'Add', input: [`mm${layer}`, `b${layer}`], output: [last ? 'output' : `pre${layer}`], name: `add${layer}` });
    if (!last) {
      nodes.push({ opType: 'Relu', input: [`pre${layer}`], output: [`h${layer}`], name: `relu${layer}` });
      current = `h${layer}`;
    }
  }
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'rx-batcher examples',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'mlp',
      node: nodes,
      initializer: initializers,
      input: [floatValueInfo('input', MLP_INPUTS)],
      output: [floatValueInfo('output', MLP_OUTPUTS)],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/**
 * Makes sure the MLP model file exists, generating it (about 5 MB, well under a second) when it
 * is missing. Writes to a temporary name first, so concurrent processes never see half a file.
 *
 * @example
 * ```ts
 * const path = ensureMlpModel(); // .cache/models/mlp.onnx
 * ```
 */
export function ensureMlpModel(path = defaultMlpPath(), seed = 1): string {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.mlp-${process.pid}-${Date.now()}.onnx.tmp`);
  writeFileSync(temporary, buildMlpModel(seed));
  renameSync(temporary, path);
  return path;
}

/**
 * A loaded MLP. `runBatch` fits `Batcher`'s `runBatch` as is.
 *
 * @example
 * ```ts
 * const mlp = await loadMlp();
 * const batcher = new Batcher({ runBatch: mlp.runBatch, maxBatchSize: 128, maxDelayMs: 1 });
 * const scores = await batcher.run(new Float32Array(MLP_INPUTS));
 * ```
 */
export interface Mlp {
  /** Scores many inputs (256 floats each) in one model call; one output (10 floats) per input, in order. */
  readonly runBatch: (inputs: readonly Float32Array[]) => Promise<Float32Array[]>;
  /** Scores one input alone: the unbatched path, for comparison. */
  readonly runOne: (input: Float32Array) => Promise<Float32Array>;
  /** Model calls and inputs so far. */
  readonly counts: () => { readonly calls: number; readonly inputs: number };
  /** Frees the native session. */
  readonly close: () => Promise<void>;
}

/**
 * Loads the MLP (generating its file first when missing) into onnxruntime-node, one thread by
 * default; pass `sessionOptions` to change that.
 *
 * @example
 * ```ts
 * const mlp = await loadMlp();
 * const [a, b] = await mlp.runBatch([x1, x2]);
 * await mlp.close();
 * ```
 */
export async function loadMlp(options: { readonly path?: string; readonly seed?: number; readonly sessionOptions?: ort.InferenceSession.SessionOptions } = {}): Promise<Mlp> {
  const session = await openSession(ensureMlpModel(options.path, options.seed), options.sessionOptions);
  let calls = 0;
  let inputsRun = 0;

  const runBatch = async (inputs: readonly Float32Array[]): Promise<Float32Array[]> => {
    const batch = inputs.length;
    if (batch === 0) return [];
    const packed = new Float32Array(batch * MLP_INPUTS);
    inputs.forEach((input, b) => {
      if (input.length !== MLP_INPUTS) throw new RangeError(`input ${b} has ${input.length} floats; the MLP takes ${MLP_INPUTS}`);
      packed.set(input, b * MLP_INPUTS);
    });
    const outputs = await session.run({ input: new ort.Tensor('float32', packed, [batch, MLP_INPUTS]) });
    calls++;
    inputsRun += batch;
    const scores = float32Output(outputs, 'output');
    return Array.from({ length: batch }, (_, b) => scores.slice(b * MLP_OUTPUTS, (b + 1) * MLP_OUTPUTS));
  };

  return {
    runBatch,
    runOne: async (input) => (await runBatch([input]))[0],
    counts: () => ({ calls, inputs: inputsRun }),
    close: () => session.release(),
  };
}
