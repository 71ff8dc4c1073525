import { decodeReplies, encodeReplies, type WireReply } from '../../lib/remote/wire';

describe('reply frames (wire)', () => {
  const replies: WireReply[] = [
    ['Ab.1', 'ok', new Uint8Array([1, 2, 3])],
    ['Ab.2 – ünïcode', 'error', { kind: 'item-failed', name: 'TypeError', message: 'bad input', stack: 'TypeError: bad input\n    at x' }],
    ['Ab.3', 'bad-result', { expected: 3, actual: 2 }],
    ['Ab.4', 'ok', new Uint8Array(0)],
  ];

  it('round-trips every kind of reply, ok data as the same bytes', () => {
    const decoded = decodeReplies(encodeReplies(replies))!;
    expect(decoded.map((r) => [r[0], r[1], r[1] === 'ok' ? Array.from(r[2]) : r[2]])).toEqual(
      replies.map((r) => [r[0], r[1], r[1] === 'ok' ? Array.from(r[2]) : r[2]]),
    );
    expect(decodeReplies(encodeReplies([]))).toEqual([]);
  });

  it('reads a frame cut short anywhere, or with bytes after its last reply, as no frame', () => {
    const frame = encodeReplies(replies);
    for (let cut = 0; cut < frame.length; cut++) expect(decodeReplies(frame.subarray(0, cut))).toBeUndefined();
    expect(decodeReplies(Buffer.concat([frame, Buffer.from([0])]))).toBeUndefined();
  });

  it('reads a frame whose count, status or error lies as no frame', () => {
    const frame = Buffer.from(encodeReplies(replies));
    const more = Buffer.from(frame);
    more.writeUInt32LE(replies.length + 1, 3);
    expect(decodeReplies(more)).toBeUndefined();
    const status = Buffer.from(frame);
    status[7] = 9; // the first reply's status
    expect(decodeReplies(status)).toBeUndefined();
    const notAnError = encodeReplies([['x', 'error', 'just a string' as never]]);
    expect(decodeReplies(notAnError)).toBeUndefined();
    const version = Buffer.from(frame);
    version[2] = 2;
    expect(decodeReplies(version)).toBeUndefined();
  });

  it('leaves out a reply whose id does not fit (no producer makes one), not the frame', () => {
    const decoded = decodeReplies(encodeReplies([['x'.repeat(70_000), 'ok', new Uint8Array([1])], ['y', 'ok', new Uint8Array([2])]]))!;
    expect(decoded.map((r) => r[0])).toEqual(['y']);
  });
});
