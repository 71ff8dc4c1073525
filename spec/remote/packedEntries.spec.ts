import { PackedEntries, entryOf, splitForCap, type PackedEntry } from '../../lib/remote/packedEntries';
import { decodeRequestPacket, encodeRequestPacket, isRequestPacket, type PackedRequest } from '../../lib/remote/requestPacket';
import type { RequestMessage } from '../../lib/remote/transport';

const message = (n: number, extra: Partial<RequestMessage> = {}): RequestMessage => ({
  id: `p-${n}`,
  replyTo: 'rxb:reply:ab',
  body: new Uint8Array([n, n + 1]),
  ...extra,
});

const bytes = (b: Uint8Array | undefined): number[] | undefined => (b === undefined ? undefined : Array.from(b));
const plain = (r: RequestMessage & { earlier?: number }) => ({
  id: r.id, replyTo: r.replyTo, body: bytes(r.body), context: bytes(r.context), mac: bytes(r.mac),
  deadline: r.deadline, priority: r.priority, earlier: r.earlier,
});

describe('request packets', () => {
  const messages: RequestMessage[] = [
    message(1),
    message(2, { deadline: 1_700_000_000_123.5, priority: -3, context: new Uint8Array([9, 9]), mac: new Uint8Array(32).fill(7) }),
    message(3, { replyTo: 'rxb:reply:other – ünï', id: 'ïd-3' }),
    message(4, { body: new Uint8Array(0) }),
  ];

  it('round-trips every field of every request, with each one\'s earlier deliveries', () => {
    const decoded = decodeRequestPacket(encodeRequestPacket(messages, (i) => i * 2))!;
    expect(decoded.map(plain)).toEqual(messages.map((m, i) => plain({ ...m, earlier: i * 2 })));
    expect(decodeRequestPacket(encodeRequestPacket([]))).toEqual([]);
    expect(decodeRequestPacket(encodeRequestPacket([message(1)]))![0].earlier).toBe(0);
  });

  it('reads bytes cut short anywhere, with bytes after the last request, or of another format as no packet', () => {
    const packet = encodeRequestPacket(messages);
    expect(isRequestPacket(packet)).toBe(true);
    for (let cut = 0; cut < packet.length; cut++) expect(decodeRequestPacket(packet.subarray(0, cut))).toBeUndefined();
    expect(decodeRequestPacket(Buffer.concat([packet, Buffer.from([0])]))).toBeUndefined();
    const lying = Buffer.from(packet);
    lying.writeUInt32LE(1_000_000, 3);
    expect(decodeRequestPacket(lying)).toBeUndefined();
    const flags = Buffer.from(packet);
    flags[7] = 0x80;
    expect(decodeRequestPacket(flags)).toBeUndefined();
    const sameReplyFirst = Buffer.from(packet);
    sameReplyFirst[7] = 1; // "same reply address as the one before" on the first request
    expect(decodeRequestPacket(sameReplyFirst)).toBeUndefined();
    expect(decodeRequestPacket(Buffer.from('not a packet at all'))).toBeUndefined();
  });

  it('refuses, naming the field, what does not fit its length', () => {
    expect(() => encodeRequestPacket([message(1, { id: 'x'.repeat(70_000) })])).toThrow(/request id is 70000 bytes/);
    expect(() => encodeRequestPacket([message(1, { mac: new Uint8Array(300) })])).toThrow(/mac is 300 bytes/);
  });
});

describe('PackedEntries (a worker link over packed entries)', () => {
  const entry = (ref: string, count: number, deliveries = 1, earlier = 0): PackedEntry<string> => ({
    ref,
    deliveries,
    reclaimed: deliveries > 1,
    requests: Array.from({ length: count }, (_, i): PackedRequest => ({ ...message(i), id: `${ref}.${i}`, earlier })),
  });
  const ids = (ds: readonly { id: string }[]): string[] => ds.map((d) => d.id);
  /** `requests` appended as a new entry `ref` and read on its first delivery, as a broker would. */
  const encodeAndRead = (ref: string, requests: readonly PackedRequest[]): PackedEntry<string> => ({
    ref, deliveries: 1, reclaimed: false, requests: decodeRequestPacket(encodeRequestPacket(requests, (i) => requests[i].earlier))!,
  });
  const halving = (d: number): number => (d <= 1 ? Infinity : Math.max(1, 8 >> (d - 1)));

  it('hands out up to the room, holds the rest of a first delivery and hands it out first next time', () => {
    const entries = new PackedEntries<string>();
    const first = entries.take(3, [entry('a', 5)]);
    expect(ids(first.deliveries)).toEqual(['a.0', 'a.1', 'a.2']);
    expect(first.work).toEqual({ again: [], acknowledge: [], handBack: [] });
    expect(entries.heldCount).toBe(2);
    const second = entries.take(4, [entry('b', 1)]);
    expect(ids(second.deliveries)).toEqual(['a.3', 'a.4', 'b.0']);
    expect(second.deliveries.map((d) => d.deliveries)).toEqual([1, 1, 1]);
    expect(entryOf(second.deliveries[0])).toBe('a');
  });

  it('asks a read for enough entries to fill the room by the mean entry size, rounded up (1 before any was taken)', () => {
    const entries = new PackedEntries<string>();
    expect(entries.entriesFor(64)).toBe(1);
    expect(entries.entriesFor(0)).toBe(0);
    entries.take(64, [entry('a', 50)]);
    expect(entries.meanEntrySize).toBe(50);
    // 64 ÷ 50 rounded down would start a batch of 50 with a backlog waiting; up fills it (14 held).
    expect(entries.entriesFor(64)).toBe(2);
    entries.take(64, [entry('b', 10), entry('c', 30)]);
    expect(entries.meanEntrySize).toBe(35);
    expect(entries.entriesFor(64)).toBe(2);
    expect(entries.entriesFor(1)).toBe(1);
  });

  it('acknowledges an entry only when its last request is done', () => {
    const entries = new PackedEntries<string>();
    const a = entries.take(2, [entry('a', 3)]).deliveries;
    expect(entries.settle(a, 'done').acknowledge).toEqual([]);
    const rest = entries.take(5).deliveries;
    expect(ids(rest)).toEqual(['a.2']);
    expect(entries.settle(rest, 'done')).toEqual({ again: [], acknowledge: ['a'], handBack: [] });
  });

  it('counts each request\'s deliveries as its earlier ones plus its entry\'s', () => {
    const entries = new PackedEntries<string>();
    const { deliveries } = entries.take(10, [entry('a', 2, 3, 2)]);
    expect(deliveries.map((d) => [d.deliveries, d.reclaimed])).toEqual([[5, true], [5, true]]);
  });

  it('does not run part of a redelivered entry too big for its cap: cuts it into parts, appended uncharged, and acknowledges it', () => {
    const entries = new PackedEntries<string>(halving);
    const { deliveries, work } = entries.take(64, [entry('a', 5, 3)]); // cap(3) = 2
    expect(deliveries).toEqual([]);
    expect(entries.heldCount).toBe(0);
    // Each part a pull may run whole; each request as before this delivery (earlier 2: delivery 3 again when read).
    expect(work.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['a.0', 2], ['a.1', 2]], [['a.2', 2], ['a.3', 2]], [['a.4', 2]]]);
    expect(work.acknowledge).toEqual(['a']);
    expect(work.handBack).toEqual([]);
    // A part read again (a new entry, earlier 2 on its first delivery) is on delivery 3, and handed out whole.
    const part = encodeAndRead('p', work.again[0]);
    const again = entries.take(64, [part]);
    expect(again.deliveries.map((d) => [d.id, d.deliveries])).toEqual([['a.0', 3], ['a.1', 3]]);
    expect(again.work).toEqual({ again: [], acknowledge: [], handBack: [] });
    expect(entries.settle(again.deliveries, 'done').acknowledge).toEqual(['p']);
  });

  it('cuts a redelivered entry that would fit a pull whole but not after what this one took (moved whole, uncharged), and goes on', () => {
    const entries = new PackedEntries<string>(halving);
    // cap(2) = 4: a.0 … a.2 fit; b (3 on delivery 2) does not after them; c (first delivery) is handed out.
    const { deliveries, work } = entries.take(64, [entry('a', 3, 2), entry('b', 3, 2), entry('c', 1)]);
    expect(ids(deliveries)).toEqual(['a.0', 'a.1', 'a.2', 'c.0']);
    expect(work.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['b.0', 1], ['b.1', 1], ['b.2', 1]]]);
    expect(work.acknowledge).toEqual(['b']);
  });

  it('ends a pull before a redelivered entry that would make it hold more than a request\'s cap, and cuts that entry', () => {
    const entries = new PackedEntries<string>(halving);
    entries.take(1, [entry('a', 4)]); // holds a.1 … a.3 (first deliveries)
    const { deliveries, work } = entries.take(64, [entry('b', 3, 4)]); // cap(4) = 1
    expect(ids(deliveries)).toEqual(['a.1', 'a.2', 'a.3']);
    expect(work.again.map((p) => p.map((r) => r.id))).toEqual([['b.0'], ['b.1'], ['b.2']]);
    expect(work.acknowledge).toEqual(['b']); // cut: acknowledged with its parts' appending
  });

  it('hands out a redelivered entry that fits whole, and holds nothing of it', () => {
    const entries = new PackedEntries<string>(halving);
    const { deliveries, work } = entries.take(64, [entry('a', 4, 2), entry('b', 2)]); // cap(2) = 4
    expect(ids(deliveries)).toEqual(['a.0', 'a.1', 'a.2', 'a.3']);
    expect(entries.heldCount).toBe(2); // b, on its first delivery, waits for the next pull
    expect(work).toEqual({ again: [], acknowledge: [], handBack: [] });
    expect(entries.settle(deliveries, 'done').acknowledge).toEqual(['a']);
  });

  it('hands an entry back whole when all of it is released before any is done, else moves the released ones charged', () => {
    const entries = new PackedEntries<string>();
    const a = entries.take(2, [entry('a', 2), entry('b', 3)]).deliveries;
    expect(entries.settle(a, 'released')).toEqual({ again: [], acknowledge: [], handBack: ['a'] });
    const b = entries.take(3).deliveries;
    entries.settle(b.slice(0, 1), 'done');
    const work = entries.settle(b.slice(1), 'released');
    expect(work.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['b.1', 1], ['b.2', 1]]]);
    expect(work.acknowledge).toEqual(['b']);
    expect(work.handBack).toEqual([]);
  });

  it('renews the entries of running requests and of held ones, each once; a closing link drains the held ones', () => {
    const entries = new PackedEntries<string>();
    const running = entries.take(2, [entry('a', 2), entry('b', 2)]).deliveries;
    expect(entries.entriesOf(running)).toEqual(['a', 'b']);
    const held = entries.drain();
    expect(ids(held)).toEqual(['b.0', 'b.1']);
    expect(entries.heldCount).toBe(0);
    // Never handed out: moved uncharged (a hand-back would count a delivery nobody ran), the entry acknowledged.
    const work = entries.settle(held, 'released');
    expect(work.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['b.0', 0], ['b.1', 0]]]);
    expect(work).toMatchObject({ acknowledge: ['b'], handBack: [] });
  });

  it('a closing link hands back what it held of a part-answered entry uncharged, and what it ran charged', () => {
    const entries = new PackedEntries<string>();
    const [done, released] = entries.take(2, [entry('a', 5)]).deliveries;
    expect(entries.settle([done], 'done').acknowledge).toEqual([]);
    const handedBack = entries.settle([released], 'released'); // a plain stop: it was handed out, so charged
    expect(handedBack.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['a.1', 1]]]);
    const closing = entries.settle(entries.drain(), 'released'); // never handed out: as they were before this delivery
    expect(closing.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['a.2', 0], ['a.3', 0], ['a.4', 0]]]);
    expect(closing.acknowledge).toEqual(['a']);
  });

  it('an entry released whole goes back whole only if every request of it was handed out', () => {
    const entries = new PackedEntries<string>();
    const out = entries.take(1, [entry('a', 3)]).deliveries;
    const work = entries.settle([...out, ...entries.drain()], 'released');
    expect(work.handBack).toEqual([]);
    expect(work.again.map((p) => p.map((r) => [r.id, r.earlier]))).toEqual([[['a.0', 1], ['a.1', 0], ['a.2', 0]]]);
    expect(work.acknowledge).toEqual(['a']);
  });

  it('splitForCap cuts a redelivered entry into parts one batch each may run, each request given back the delivery it was not run in', () => {
    // cap(3) = 2, cap(2) = 4: a request that came once before this entry (earlier 1) is on delivery 3.
    const mixed: PackedEntry<string> = { ...entry('m', 7, 2), requests: entry('m', 7, 2).requests.map((r, i) => ({ ...r, earlier: i === 4 ? 1 : 0 })) };
    const parts = splitForCap(mixed, 64, halving)!;
    expect(parts.map((p) => p.map((r) => r.id))).toEqual([['m.0', 'm.1', 'm.2', 'm.3'], ['m.4', 'm.5'], ['m.6']]);
    expect(parts.flat().map((r) => r.earlier)).toEqual([1, 1, 1, 1, 2, 1, 1]);
    expect(splitForCap(entry('s', 3, 5), 64, halving)!.map((p) => p.length)).toEqual([1, 1, 1]); // cap(5) = 1
    expect(splitForCap(entry('r', 10, 1), 4)!.map((p) => p.length)).toEqual([4, 4, 2]); // room alone
    expect(splitForCap(entry('w', 4, 2), 64, halving)).toBeUndefined(); // fits whole
  });
});
