import { v8Codec, type BatchTransport, type LinkEvent, type ProducerLink, type RequestMessage } from '../../../lib/remote';
import { encodeReplies } from '../../../lib/remote/wire';

/**
 * A producer-side transport that delivers nothing by itself: the test plays the broker,
 * answering requests and reporting connection events by hand.
 */
export function scriptedTransport(withResend: boolean) {
  const sent: RequestMessage[][] = [];
  const resent: RequestMessage[][] = [];
  let onReplies!: (frame: Uint8Array) => void;
  let onEvent!: (event: LinkEvent) => void;
  const transport: BatchTransport = {
    kind: 'scripted',
    async openProducer(_subject, replies, events) {
      onReplies = replies;
      onEvent = events!;
      const link: ProducerLink = {
        replyTo: 'me',
        async send(messages) {
          sent.push([...messages]);
        },
        async close() {},
      };
      if (!withResend) return link;
      return { ...link, async resend(messages) {
        resent.push([...messages]);
        return messages.length - 1; // the transport knows one of them is not read yet
      } };
    },
    openWorker: () => Promise.reject(new Error('no workers here')),
    backlog: async () => ({ waiting: 0, pending: 0 }),
  };
  const answer = (message: RequestMessage): void => onReplies(encodeReplies([[message.id, 'ok', v8Codec.encode(2 * (v8Codec.decode(message.body) as number))]]));
  return { transport, sent, resent, answer, event: (e: LinkEvent) => onEvent(e), frame: (bytes: Uint8Array) => onReplies(bytes) };
}

