// DataLoader 2.2.3's __tests__/dataloader.test.js, against rx-batcher/dataloader and dataloader itself.
import { runSuite } from './runSuite';

runSuite('./__tests__/dataloader.test.js');
