/**
 * `npx tsx examples/virtual-time-testing/main.ts`: the recipe's `Geocoder` on the real clock,
 * against a fake batch API that answers after 20 ms. The recipe itself is the test:
 * spec/examples/virtual-time-testing.spec.ts drives the same class in virtual time.
 */
import { firstValueFrom, map, timer } from 'rxjs';
import { Geocoder, type LatLng } from './geocoder';

const fakeApi = (addresses: readonly string[]) =>
  timer(20).pipe(map(() => addresses.map((a): LatLng => ({ lat: a.length, lng: -a.length }))));

async function main(): Promise<void> {
  const geocoder = new Geocoder(fakeApi);
  const addresses = ['1 Main St', '22 High Street', 'Rue de Rivoli 3'];
  const started = performance.now();
  const points = await Promise.all(addresses.map((a) => firstValueFrom(geocoder.lookup$(a))));
  const elapsed = performance.now() - started;
  await geocoder.close();
  addresses.forEach((a, i) => console.log(`${a.padEnd(16)} → ${JSON.stringify(points[i])}`));
  console.log(`${addresses.length} lookups, ${geocoder.apiCalls} API call, ${elapsed.toFixed(0)} ms`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
