import { memoryTransport } from '../../lib/remote';
import { describeTransportContract } from './contract';

// The contract's in-process checks, on the in-memory transport with real (short) timers:
// the reference every broker transport is held to.
const shared = memoryTransport();
describeTransportContract('in-memory', () => ({ transport: () => shared }), { processes: false });
