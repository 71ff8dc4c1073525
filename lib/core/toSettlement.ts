import type { Settlement } from '../types.js';
import { outcomeOf, resultOf, type EngineRequest } from './request.js';

/** The public `Promise.allSettled`-style view of a settled request. */
export function toSettlement<I, O>(request: EngineRequest<I, O>): Settlement<I, O> {
  const settlement: Settlement<I, O> = outcomeOf(request) === 'succeeded'
    ? { status: 'fulfilled', value: resultOf(request) as O, id: request.id, input: request.input }
    : { status: 'rejected', reason: resultOf(request), id: request.id, input: request.input };
  const context = request.extras?.context;
  return context === undefined ? settlement : { ...settlement, context };
}
