import { describeValue, prefix } from '../errors/describe.js';

/** Why an input cannot take the defaults (a wrapper, so that an input that is itself an Error is not mistaken for one). */
export class Refused {
  constructor(readonly error: TypeError) {}
}

/**
 * Fills the keys a caller omitted (absent or `undefined`) from `defaults`, copying the input
 * only when something is missing: the caller's object is never mutated. Falsy defaults
 * (`0`, `false`, `''`, `null`) are filled like any other value, unlike caikit's truthiness test.
 * An input that cannot be read (a throwing getter, a revoked Proxy) is refused, never thrown.
 */
export function applyDefaults<I>(
  name: string,
  input: I,
  defaults: Readonly<Record<string, unknown>>,
  keys: readonly string[],
): I | Refused {
  let step = 'looking at the input';
  try {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return new Refused(new TypeError(
        `${prefix(name)} run(input): \`defaults\` are set, so every input must be an object, got ${describeValue(input)}.`,
      ));
    }
    const source = input as Record<string, unknown>;
    let filled: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      step = `reading its \`${key}\``;
      if (source[key] !== undefined) continue;
      step = 'copying the input';
      filled ??= Object.assign(Object.create(Object.getPrototypeOf(source)) as Record<string, unknown>, source);
      filled[key] = defaults[key];
    }
    return (filled ?? source) as I;
  } catch (error) {
    // A getter (or a Proxy) on the caller's input threw: this caller alone is refused.
    return new Refused(new TypeError(
      `${prefix(name)} run(input): \`defaults\` are set, but ${step} to fill them in threw ${describeThrown(error)}.`,
      { cause: error },
    ));
  }
}

function describeThrown(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return describeValue(error);
  } catch {
    return 'a value that cannot be described';
  }
}
