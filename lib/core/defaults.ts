import { describeValue, prefix } from '../errors/describe';

/**
 * Fills the keys a caller omitted (absent or `undefined`) from `defaults`, copying the input
 * only when something is missing: the caller's object is never mutated. Falsy defaults
 * (`0`, `false`, `''`, `null`) are filled like any other value, unlike caikit's truthiness test.
 */
export function applyDefaults<I>(
  name: string,
  input: I,
  defaults: Readonly<Record<string, unknown>>,
  keys: readonly string[],
): I | TypeError {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return new TypeError(
      `${prefix(name)} run(input): \`defaults\` are set, so every input must be an object, got ${describeValue(input)}.`,
    );
  }
  const source = input as Record<string, unknown>;
  let filled: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (source[key] !== undefined) continue;
    filled ??= Object.assign(Object.create(Object.getPrototypeOf(source)) as Record<string, unknown>, source);
    filled[key] = defaults[key];
  }
  return (filled ?? source) as I;
}
