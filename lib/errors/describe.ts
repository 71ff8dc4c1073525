/** Renders a bad value for an error message: `0 (number)`, `"5" (string)`, `[object] (object)`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  const type = typeof value;
  if (type === 'string') return `${JSON.stringify(value)} (string)`;
  if (type === 'number' || type === 'boolean' || type === 'bigint') return `${String(value)} (${type})`;
  if (type === 'function') return `a function (function)`;
  if (type === 'symbol') return `${String(value)} (symbol)`;
  if (Array.isArray(value)) return `an array of length ${value.length} (object)`;
  const ctor = (value as object).constructor;
  const label = ctor && typeof ctor.name === 'string' && ctor.name !== 'Object' ? `a ${ctor.name}` : 'an object';
  return `${label} (object)`;
}

/** The prefix every rx-batcher message starts with, naming the batcher when it has a name. */
export function prefix(name: string | undefined): string {
  return name === undefined ? '[rx-batcher]' : `[rx-batcher] ${JSON.stringify(name)}:`;
}
