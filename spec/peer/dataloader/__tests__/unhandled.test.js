/**
 * Copyright (c) 2019-present, GraphQL Foundation
 *
 * This source code is licensed under the MIT license found in the
 * LICENSE file in the root directory of this source tree.
 *
 * @flow
 */

// rx-batcher: Jest 30 has no `global.jasmine.process`; the same steps run in a child process
// (../unhandledChild.js) against the library this copy of the suite judges (../README.md).
const runInChild = require('../runInChild');
const library = process.env.PEER_DATALOADER;

describe('Unhandled rejections', () => {
  it('Not catching a primed error is an unhandled rejection', async () => {
    const { hadUnhandledRejection } = await runInChild('unhandledChild.js', library);
    expect(hadUnhandledRejection).toBe(true);
  });
});
