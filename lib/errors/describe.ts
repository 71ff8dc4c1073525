import { match, P } from 'ts-pattern';

/** Renders a bad value for an error message: `0 (number)`, `"5" (string)`, `an object (object)`. */
export function describeValue(value: unknown): string {
  return match(value)
    .with(P.nullish, (v) => String(v))
    .with(P.string, (s) => `${JSON.stringify(s)} (string)`)
    .with(P.union(P.number, P.boolean, P.bigint, P.symbol), (v) => `${String(v)} (${typeof v})`)
    .when((v): v is (...args: unknown[]) => unknown => typeof v === 'function', () => 'a function (function)')
    .when(Array.isArray, (a: unknown[]) => `an array of length ${a.length} (object)`)
    .otherwise((o) => {
      let name: unknown;
      try {
        name = (o as object).constructor?.name;
      } catch {
        // A Proxy or a throwing `constructor` getter: describe it without its class.
      }
      return `${typeof name === 'string' && name !== 'Object' && name !== '' ? `a ${name}` : 'an object'} (object)`;
    });
}

/** The prefix every rx-batcher message starts with, naming the batcher when it has a name. */
export function prefix(name: string | undefined): string {
  return name === undefined ? '[rx-batcher]' : `[rx-batcher] ${JSON.stringify(name)}:`;
}
