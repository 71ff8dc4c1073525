/**
 * What the scenario-8 load generator (`overload.ts`) and the server process
 * (`serverProcess.ts`) say to each other over the IPC channel.
 */
/**
 * Which server the process runs, and the recipe's options (`HttpModelServerOptions`, the
 * numeric ones: this module stays free of the server's imports, so the compiled bench has none).
 *
 * @example
 * ```ts
 * const config: ServerProcessConfig = { server: 'recipe', options: { maxEventLoopDelayMs: 0 } };
 * ```
 */
export interface ServerProcessConfig {
  readonly server: 'recipe' | 'floor';
  /** The recipe with its model on a worker thread (`modelOnThread`) instead of the event loop. */
  readonly thread?: boolean;
  readonly options?: Readonly<Record<string, number>>;
}

/**
 * What the server process sends its parent.
 *
 * @example
 * ```ts
 * child.on('message', (m: ServerMessage) => m.type === 'rss' && samples.push(m.mb));
 * ```
 */
export type ServerMessage =
  | { readonly type: 'ready'; readonly url: string; readonly batchMs: number; readonly maxBatchSize: number }
  | { readonly type: 'rss'; readonly mb: number }
  | {
      readonly type: 'report';
      readonly cpuMs: number;
      readonly eventLoopUtilization: number;
      readonly peakRssMb: number;
      readonly counters: Record<string, number | boolean>;
    };
