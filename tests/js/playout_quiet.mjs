// An official JS SDK agent (npm @fishjam-cloud/js-server-sdk) publishes, interrupts and
// listens in a room where another agent asked for shoal's playout events; the SDK logs
// every agent message it cannot decode ("Couldn't decode websocket agent message"), so it
// must log none. At the end the script hands the SDK one real PlayoutEvent frame
// (SHOAL_CONTROL_FRAME, base64) to show that such a frame would have been logged.
//
// Usage: SHOAL_URL=... SHOAL_TOKEN=... SHOAL_ROOM=... SHOAL_CONTROL_FRAME=... node playout_quiet.mjs
// Plays 1 s, interrupts it after 400 ms, listens 600 ms more (the Python side plays its own
// track meanwhile). Prints ONE JSON object on stdout.

import { spawnSync } from 'node:child_process';

if (typeof globalThis.WebSocket === 'undefined') {
  if (process.env.SHOAL_SCENARIO_REEXEC) process.exit(2);
  const child = spawnSync(
    process.execPath,
    ['--experimental-websocket', '--no-warnings', ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, SHOAL_SCENARIO_REEXEC: '1' } },
  );
  process.exit(child.status ?? 1);
}

const { FishjamClient } = await import('@fishjam-cloud/js-server-sdk');

const undecodable = [];
const consoleError = console.error;
console.error = (...args) => {
  if (String(args[0]).includes("Couldn't decode websocket agent message")) undecodable.push(String(args[0]));
  else consoleError(...args);
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const client = new FishjamClient({ fishjamId: process.env.SHOAL_URL, managementToken: process.env.SHOAL_TOKEN });
const { agent } = await client.createAgent(process.env.SHOAL_ROOM, {}, { onError: () => {}, onClose: () => {} });
let audioChunks = 0;
agent.on('trackData', () => { audioChunks += 1; });
const track = agent.createTrack({ encoding: 'pcm16', sampleRate: 16000, channels: 1 }, {});
const pcm = Buffer.alloc(16000 * 2);
for (let i = 0; i < 16000; i += 1) pcm.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 330 * i) / 16000) * 8000), i * 2);
for (let offset = 0; offset < pcm.length; offset += 640) agent.sendData(track.id, new Uint8Array(pcm.subarray(offset, offset + 640)));
await sleep(400);
agent.interruptTrack(track.id);
await sleep(600);
const during = undecodable.length;
agent.dispatchNotification({ data: Buffer.from(process.env.SHOAL_CONTROL_FRAME, 'base64') });
const control = undecodable.length - during;
agent.disconnect();
console.log(JSON.stringify({ undecodable: during, control, audioChunks }));
process.exit(0);
