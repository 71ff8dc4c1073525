/**
 * `npm run test:unit`: the fast inner loop. Everything in jest.config.js except the specs that
 * start brokers (redis-server, nats-server), load ONNX models, start HTTP/WebSocket servers or
 * example processes, or run the benchmark. `npm test` still runs them all.
 *
 * @type {import('jest').Config}
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  testPathIgnorePatterns: [
    '/node_modules/',
    // Scale-out: everything but the in-memory transport needs a broker binary.
    '<rootDir>/spec/remote/(?!memory)',
    // Examples: all but those that run on virtual time or in memory load models or start servers.
    '<rootDir>/spec/examples/(?!(quickstart|operator-pipeline|caikit-style|virtual-time-testing)\\.spec\\.ts$)',
    // The docs pasted into a project from `npm pack` (builds, installs, runs ~25 programs and Redis).
    '<rootDir>/spec/docs/pasted\\.spec\\.ts$',
    // The benchmark's smoke run (every scenario, real models, a worker process).
    '<rootDir>/spec/bench/smoke\\.spec\\.ts$',
  ],
};
