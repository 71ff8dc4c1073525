/**
 * A jest environment for tests that run onnxruntime-node for real.
 *
 * Jest runs each test file in its own V8 context, whose `Float32Array` differs from the one
 * the native addon uses for the arrays it returns; onnxruntime's `instanceof` checks then fail
 * with "A float32 tensor's data must be type of function Float32Array()". This environment
 * hands the test context the process's own typed-array constructors, so both sides agree.
 *
 * Use it with a docblock at the top of the test file:
 *
 * @example
 * ```ts
 * /** @jest-environment ./spec/examples/helpers-onnx-environment.ts *\/
 * ```
 */
import { TestEnvironment } from 'jest-environment-node';
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';

const typedArrays = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
] as const;

export default class OnnxTestEnvironment extends TestEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    const sandbox = this.global as unknown as Record<string, unknown>;
    for (const name of typedArrays) sandbox[name] = globalThis[name];
  }
}
