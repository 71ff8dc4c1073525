import type { Settlement } from '../types.js';
import type { EngineRequest } from './request.js';

/** The public `Promise.allSettled`-style view of a settled request. */
export function toSettlement<I, O>(request: EngineRequest<I, O>): Settlement<I, O> {
  const settlement: Settlement<I, O> = request.outcome === 'succeeded'
    ? { status: 'fulfilled', value: request.result as O, id: request.id, input: request.input }
    : { status: 'rejected', reason: request.result, id: request.id, input: request.input };
  const context = request.extras?.context;
  return context === undefined ? settlement : { ...settlement, context };
}
