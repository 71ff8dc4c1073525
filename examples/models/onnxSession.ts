import * as ort from 'onnxruntime-node';

/**
 * Opens an ONNX model with onnxruntime-node on one CPU thread. On a small machine the default
 * thread pool is 2–3× slower for small models, and one thread keeps runs repeatable; batching,
 * not threads, is what this project is about.
 *
 * @example
 * ```ts
 * const session = await openSession('model.onnx');
 * const out = await session.run({ input: new ort.Tensor('float32', data, [1, 256]) });
 * ```
 */
export function openSession(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...options,
  };
  return typeof model === 'string' ? ort.InferenceSession.create(model, sessionOptions) : ort.InferenceSession.create(model, sessionOptions);
}

/**
 * Reads a float32 output of a session run, failing clearly when the model did not produce it.
 *
 * @example
 * ```ts
 * const probabilities = float32Output(await session.run(feeds), 'output');
 * ```
 */
export function float32Output(outputs: ort.InferenceSession.ReturnType, name: string): Float32Array {
  const tensor = outputs[name];
  if (tensor === undefined) throw new Error(`the model produced no output named "${name}" (it produced: ${Object.keys(outputs).join(', ')})`);
  if (!(tensor.data instanceof Float32Array)) throw new Error(`output "${name}" is ${tensor.type}, expected float32`);
  return tensor.data;
}
