/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }],
    // DataLoader's own test suite, copied as it is (spec/peer/dataloader/README.md), is Flow-typed JavaScript.
    '/spec/peer/dataloader/.+\\.js$': ['babel-jest', { presets: ['@babel/preset-flow'], babelrc: false, configFile: false }],
  },
  // Real-component tests (ONNX models, servers, brokers) take longer than unit tests.
  testTimeout: 30000,
  // Examples import the package by its name, as a user's code would (tsconfig.json `paths`).
  // lib/ imports its own modules with explicit `.js` extensions (as ES modules need); they are `.ts` here.
  moduleNameMapper: { '^rx-batcher$': '<rootDir>/lib', '^rx-batcher/([a-z]+)$': '<rootDir>/lib/$1', '^(\\.{1,2}/.*)\\.js$': '$1' },
  // The default reporter, then one plain closing line: `jest: N passed, N failed`.
  reporters: ['default', '<rootDir>/spec/helpers/summaryReporter.js'],
};
