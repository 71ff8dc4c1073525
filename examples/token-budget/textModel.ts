import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { float32Output, openSession } from '../models/onnxSession';
import { seededRandom } from '../models/seededRandom';

/**
 * Token ids of one text, as the tokenizer returns them.
 *
 * @example
 * ```ts
 * const ids: TokenIds = encode('A fine film.'); // [32, 7060, 4632, 13]
 * ```
 */
export type TokenIds = readonly number[];

/** Rows of the embedding table: every id of the `cl100k_base` encoding (0…100276, special tokens included). */
export const TEXT_VOCAB = 100_277;
/** Width of a token's embedding. */
export const EMBED_WIDTH = 32;
/** Width of the per-token feed-forward layer: the part whose cost grows with every (padded) token. */
export const TOKEN_HIDDEN = 256;
/** Scores per text: two classes, like a sentiment classifier's negative and positive. */
export const TEXT_CLASSES = 2;

/** Token id written into padding positions (its mask is 0, so its value never reaches the output). */
const PAD_ID = 0;

function floatInitializer(name: string, dims: number[], next: () => number, scale: number): onnx.ITensorProto {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = (next() * 2 - 1) * scale;
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function int64Initializer(name: string, values: number[]): onnx.ITensorProto {
  const data = BigInt64Array.from(values, BigInt);
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

function valueInfo(name: string, elemType: onnx.TensorProto.DataType, dims: (string | number)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

/**
 * Builds a small text classifier with seeded random weights and returns the serialized ONNX
 * model (opset 17, IR 8). Its shape is a real one, scaled down: a batch of token ids padded to
 * the batch's longest text, `[N, L]`, and a mask saying which positions are real tokens go in;
 * two logits per text come out.
 *
 * ```
 * ids [N, L] ─ Gather(embedding [100277, 32]) ─ MatMul [32, 256] + bias ─ Relu   ← every position, padding too
 *            ─ × mask ─ sum over L ÷ real tokens (masked mean)                   ← padding drops out here
 *            ─ MatMul [256, 2] + bias ─ logits [N, 2]
 * ```
 *
 * The weights are random, so the logits mean nothing; the cost is what matters: the
 * per-token layer runs on all N × L positions, so a batch costs its size times its longest
 * text, padding included.
 *
 * @example
 * ```ts
 * const session = await ort.InferenceSession.create(buildTextModel(1));
 * ```
 */
export function buildTextModel(seed = 1): Uint8Array {
  const next = seededRandom(seed);
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const initializer = [
    floatInitializer('embedding', [TEXT_VOCAB, EMBED_WIDTH], next, 1),
    floatInitializer('W_token', [EMBED_WIDTH, TOKEN_HIDDEN], next, Math.sqrt(6 / (EMBED_WIDTH + TOKEN_HIDDEN))),
    floatInitializer('b_token', [TOKEN_HIDDEN], next, 0.1),
    floatInitializer('W_class', [TOKEN_HIDDEN, TEXT_CLASSES], next, Math.sqrt(6 / (TOKEN_HIDDEN + TEXT_CLASSES))),
    floatInitializer('b_class', [TEXT_CLASSES], next, 0.1),
    int64Initializer('axis_2', [2]),
    int64Initializer('axis_1', [1]),
    { name: 'one', dims: [], dataType: FLOAT, floatData: [1] },
  ];
  const node: onnx.INodeProto[] = [
    { opType: 'Gather', input: ['embedding', 'ids'], output: ['embedded'], attribute: [{ name: 'axis', i: 0, type: onnx.AttributeProto.AttributeType.INT }] },
    { opType: 'MatMul', input: ['embedded', 'W_token'], output: ['token_mm'] },
    { opType: 'Add', input: ['token_mm', 'b_token'], output: ['token_pre'] },
    { opType: 'Relu', input: ['token_pre'], output: ['token_hidden'] },
    // Masked mean over the sequence: padding positions are multiplied by 0 and not counted.
    { opType: 'Unsqueeze', input: ['mask', 'axis_2'], output: ['mask_3d'] },
    { opType: 'Mul', input: ['token_hidden', 'mask_3d'], output: ['masked'] },
    { opType: 'ReduceSum', input: ['masked', 'axis_1'], output: ['summed'], attribute: [{ name: 'keepdims', i: 0, type: onnx.AttributeProto.AttributeType.INT }] },
    { opType: 'ReduceSum', input: ['mask', 'axis_1'], output: ['length'], attribute: [{ name: 'keepdims', i: 1, type: onnx.AttributeProto.AttributeType.INT }] },
    { opType: 'Max', input: ['length', 'one'], output: ['divisor'] }, // an empty text divides by 1, not 0
    { opType: 'Div', input: ['summed', 'divisor'], output: ['pooled'] },
    { opType: 'MatMul', input: ['pooled', 'W_class'], output: ['class_mm'] },
    { opType: 'Add', input: ['class_mm', 'b_class'], output: ['logits'] },
  ];
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'rx-batcher examples',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'text_classifier',
      node: node.map((n, i) => ({ name: `${n.opType!.toLowerCase()}_${i}`, ...n })),
      initializer,
      input: [valueInfo('ids', INT64, ['N', 'L']), valueInfo('mask', FLOAT, ['N', 'L'])],
      output: [valueInfo('logits', FLOAT, ['N', TEXT_CLASSES])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/**
 * What a {@link TextModel} has computed so far.
 *
 * @example
 * ```ts
 * const { tokens, paddedTokens } = model.counts();
 * console.log(`${(100 * (1 - tokens / paddedTokens)).toFixed(0)}% padding`);
 * ```
 */
export interface TextModelCounts {
  /** Model calls. */
  readonly calls: number;
  /** Texts scored. */
  readonly texts: number;
  /** Real tokens in them. */
  readonly tokens: number;
  /** Positions computed: for each call, its size × its longest text. `paddedTokens - tokens` is padding. */
  readonly paddedTokens: number;
  /** The largest padded batch, size × longest, of any call: what sizes the model's memory. */
  readonly largestPaddedBatch: number;
}

/**
 * The loaded text classifier. `runBatch` fits `Batcher`'s `runBatch` as is.
 *
 * @example
 * ```ts
 * const model = await loadTextModel();
 * const batcher = new Batcher<TokenIds, Float32Array>({ runBatch: model.runBatch, maxBatchSize: 32 });
 * const logits = await batcher.run(encode('a fine film'));
 * ```
 */
export interface TextModel {
  /** Scores many texts (token ids each) in one call, padded to the longest; two logits per text, in order. */
  readonly runBatch: (texts: readonly TokenIds[]) => Promise<Float32Array[]>;
  /** Scores one text alone: the unbatched path, for comparison. */
  readonly runOne: (text: TokenIds) => Promise<Float32Array>;
  /** Calls, texts, tokens and padded positions so far. */
  readonly counts: () => TextModelCounts;
  /** Frees the native session. */
  readonly close: () => Promise<void>;
}

/**
 * Builds the text classifier ({@link buildTextModel}, about 13 MB of weights, in memory) and
 * loads it into onnxruntime-node on one thread.
 *
 * @example
 * ```ts
 * const model = await loadTextModel();
 * const [a, b] = await model.runBatch([encode('great'), encode('a dull, overlong film')]);
 * await model.close();
 * ```
 */
export async function loadTextModel(options: { readonly seed?: number; readonly sessionOptions?: ort.InferenceSession.SessionOptions } = {}): Promise<TextModel> {
  const session = await openSession(buildTextModel(options.seed), options.sessionOptions);
  let calls = 0;
  let texts = 0;
  let tokens = 0;
  let paddedTokens = 0;
  let largestPaddedBatch = 0;

  const runBatch = async (batch: readonly TokenIds[]): Promise<Float32Array[]> => {
    const size = batch.length;
    if (size === 0) return [];
    const longest = Math.max(1, ...batch.map((t) => t.length)); // an all-empty batch still has one (masked) position
    const ids = new BigInt64Array(size * longest).fill(BigInt(PAD_ID));
    const mask = new Float32Array(size * longest);
    let real = 0;
    batch.forEach((text, b) => {
      text.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= TEXT_VOCAB) throw new RangeError(`text ${b}, token ${t}: id ${id} is outside the vocabulary (0…${TEXT_VOCAB - 1})`);
        ids[b * longest + t] = BigInt(id);
        mask[b * longest + t] = 1;
      });
      real += text.length;
    });
    const outputs = await session.run({ ids: new ort.Tensor('int64', ids, [size, longest]), mask: new ort.Tensor('float32', mask, [size, longest]) });
    calls++;
    texts += size;
    tokens += real;
    paddedTokens += size * longest;
    largestPaddedBatch = Math.max(largestPaddedBatch, size * longest);
    const logits = float32Output(outputs, 'logits');
    return Array.from({ length: size }, (_, b) => logits.slice(b * TEXT_CLASSES, (b + 1) * TEXT_CLASSES));
  };

  return {
    runBatch,
    runOne: async (text) => (await runBatch([text]))[0],
    counts: () => ({ calls, texts, tokens, paddedTokens, largestPaddedBatch }),
    close: () => session.release(),
  };
}
