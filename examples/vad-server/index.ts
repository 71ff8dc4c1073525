/** The streaming VAD server example: server, client, protocol and speech detector. */
export { startVadServer, type VadServer, type VadServerOptions, type VadServerStats } from './server';
export { VadClient, streamAudio } from './client';
export { StreamOverloadedError, VadStream, type ScoreFrame, type VadStreamOptions } from './vadStream';
export { SpeechDetector, type DetectorOptions } from './speechDetector';
export { StreamShedder, type Lagging } from './streamShedder';
export * from './protocol';
