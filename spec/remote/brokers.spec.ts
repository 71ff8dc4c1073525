import { findBinary } from './brokers';

// Broker tests must fail loudly, never skip, when a broker binary is missing.
describe('broker test harness', () => {
  it('finds the broker binaries this suite needs', () => {
    expect(findBinary('redis-server', 'apt-get install -y redis-server')).toMatch(/redis-server$/);
    expect(findBinary('nats-server', 'apt-get install -y nats-server')).toMatch(/nats-server$/);
  });

  it('fails with install instructions when a binary is missing', () => {
    expect(() => findBinary('no-such-broker-rxb', 'apt-get install -y no-such-broker-rxb')).toThrow(
      /no-such-broker-rxb was not found on PATH.*apt-get install -y no-such-broker-rxb/,
    );
  });
});
