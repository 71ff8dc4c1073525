import { serialize } from 'node:v8';
import { jsonCodec, v8Codec } from '../../lib/remote/codec';

describe('v8Codec (the default codec)', () => {
  const roundTrip = (value: unknown): unknown => v8Codec.decode(v8Codec.encode(value));

  it('writes numbers, strings, booleans, null and undefined in their short form and reads them back exactly', () => {
    for (const value of [0, -0, 1.5, -1e300, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity, '', 'plain', 'ünïcödé ✓ 😀', true, false, null, undefined]) {
      expect(Object.is(roundTrip(value), value)).toBe(true);
    }
    expect(v8Codec.encode(0.5).byteLength).toBe(9);
    expect(v8Codec.encode('abc').byteLength).toBe(4);
    expect(v8Codec.encode(true).byteLength).toBe(1);
  });

  it('writes a plain typed array as its own bytes and reads back the same type, values and length, aligned', () => {
    const samples = [
      new Float32Array([0.1, -2.5, 3e30]), new Float64Array([Math.PI, -0]), new Int8Array([-128, 127]), new Int16Array([-300, 300]),
      new Int32Array([-70000, 70000]), new Uint8Array([0, 255]), new Uint16Array([65535]), new Uint32Array([4294967295]),
      new Uint8ClampedArray([0, 255]), new BigInt64Array([-(2n ** 63n)]), new BigUint64Array([2n ** 64n - 1n]), new Float32Array(0),
    ];
    for (const sample of samples) {
      const encoded = v8Codec.encode(sample);
      expect(encoded.byteLength).toBe(1 + sample.byteLength);
      // Read from an odd offset inside a bigger buffer, as from a packet: the copy is aligned.
      const framed = new Uint8Array(encoded.byteLength + 3);
      framed.set(encoded, 3);
      const decoded = v8Codec.decode(framed.subarray(3)) as typeof sample;
      expect(decoded.constructor).toBe(sample.constructor);
      expect(Array.from(decoded as ArrayLike<unknown>)).toEqual(Array.from(sample as ArrayLike<unknown>));
      expect(decoded.byteOffset % sample.BYTES_PER_ELEMENT).toBe(0);
    }
  });

  it('writes only the viewed part of a typed array that views a bigger buffer', () => {
    const whole = new Float32Array([1, 2, 3, 4, 5]);
    const part = whole.subarray(1, 3);
    expect(Array.from(roundTrip(part) as Float32Array)).toEqual([2, 3]);
  });

  it('leaves everything else to v8.serialize: objects, Buffers, Maps, Dates, BigInts, Errors, DataViews', () => {
    const value = { frame: new Float32Array([0.5]), tags: new Set(['a']), at: new Date(0), n: 10n, nested: [1, 'two', null] };
    expect(v8Codec.encode(value)[0]).toBe(0xff);
    expect(roundTrip(value)).toEqual(value);
    const buffer = Buffer.from('bytes');
    expect(v8Codec.encode(buffer)[0]).toBe(0xff);
    expect(Buffer.isBuffer(roundTrip(buffer))).toBe(true);
    expect(roundTrip(10n)).toBe(10n);
    expect((roundTrip(new RangeError('boom')) as Error).message).toBe('boom');
    const view = new DataView(new ArrayBuffer(4));
    expect(v8Codec.encode(view)[0]).toBe(0xff);
  });

  it('reads what v8.serialize wrote (a producer or worker of 0.1)', () => {
    expect(v8Codec.decode(serialize(42))).toBe(42);
    expect(Array.from(v8Codec.decode(serialize(new Float32Array([1, 2]))) as Float32Array)).toEqual([1, 2]);
    expect(v8Codec.decode(serialize('s'))).toBe('s');
  });

  it('refuses bytes it did not make with an error that says so and names the first byte', () => {
    expect(() => v8Codec.decode(Uint8Array.of(0x7e, 1, 2))).toThrow(/not made by v8Codec\.encode \(first byte 0x7e\)/);
    expect(() => v8Codec.decode(Uint8Array.of(0x01, 1, 2))).toThrow(TypeError); // a number cut short
    expect(() => v8Codec.decode(Uint8Array.of(0x10, 1, 2))).toThrow(/3 bytes/); // a Float32Array of 2 bytes
    expect(() => v8Codec.decode(new Uint8Array(0))).toThrow(/first byte none/);
    expect(() => v8Codec.decode(Uint8Array.of(0x03, 0))).toThrow(TypeError); // true with a byte too many
  });

  it('the JSON codec still round-trips plain data', () => {
    expect(jsonCodec.decode(jsonCodec.encode({ a: [1, 'b'] }))).toEqual({ a: [1, 'b'] });
  });
});
