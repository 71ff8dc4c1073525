// The steps of __tests__/unhandled.test.js, in a process of its own (see README.md): Jest 30
// keeps no `global.jasmine.process` whose 'unhandledRejection' listeners a test could replace,
// so the check runs where Node's own process reports it. Prints `{"hadUnhandledRejection":…}`.
// The library is chosen as for the suite, by PEER_DATALOADER (./index.js).
const DataLoader = require('./index.js');

let hadUnhandledRejection = false;
process.on('unhandledRejection', () => {
  hadUnhandledRejection = true;
});

const identityLoader = new DataLoader(async keys => keys);

identityLoader.prime(1, new Error('Error: 1'));

// Ignore result.
identityLoader.load(1);

setTimeout(() => {
  process.stdout.write(JSON.stringify({ hadUnhandledRejection }));
}, 10);
