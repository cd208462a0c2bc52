// Drives a running shoal server with the official @fishjam-cloud/js-server-sdk (npm 0.25.0).
//
// Usage: SHOAL_URL=http://127.0.0.1:5002 SHOAL_TOKEN=... node scenario.mjs
//
// Prints ONE JSON object on stdout; tests/compat/test_js_server_sdk.py asserts on it.
// Errors are caught and reported in "errors"; the exit code is non-zero only when a
// setup step (environment, room or peer creation) fails completely.

import { spawnSync } from 'node:child_process';

// The SDK uses the global WebSocket, which Node 20 only has behind a flag (Node 22+ has it
// by default). Re-run ourselves with the flag when it is missing.
if (typeof globalThis.WebSocket === 'undefined') {
  if (process.env.SHOAL_SCENARIO_REEXEC) {
    console.error('no global WebSocket even with --experimental-websocket; use Node >= 20.10');
    process.exit(2);
  }
  const child = spawnSync(
    process.execPath,
    ['--experimental-websocket', '--no-warnings', ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, SHOAL_SCENARIO_REEXEC: '1' } },
  );
  process.exit(child.status ?? 1);
}

const { FishjamClient, FishjamWSNotifier } = await import('@fishjam-cloud/js-server-sdk');

const RATE = 16000;
const TONE_HZ = 440;
const TONE_SECONDS = 1;
const CHUNK_MS = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// JSON that survives protobuf-decoded objects (BigInt, Uint8Array) and SDK exceptions.
const plain = (value) =>
  JSON.parse(
    JSON.stringify(value, (_key, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Uint8Array) return { bytes: v.length };
      return v;
    }),
  );

const describeError = (step, error) => ({
  step,
  name: error?.constructor?.name ?? typeof error,
  message: String(error?.message ?? error),
  statusCode: error?.statusCode ?? null,
  details: error?.details ?? null,
});

function sinePcm16(freq, seconds, rate, amplitude = 8000) {
  const samples = Math.round(seconds * rate);
  const buffer = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i += 1) {
    buffer.writeInt16LE(Math.round(Math.sin((2 * Math.PI * freq * i) / rate) * amplitude), i * 2);
  }
  return buffer;
}

const url = process.env.SHOAL_URL;
const token = process.env.SHOAL_TOKEN;
const out = {
  sdkVersion: null,
  fishjamId: url,
  room: null,
  fetchedRoom: null,
  roomAfterAgents: null,
  peer: null,
  peerToken: null,
  refreshedToken: null,
  agentA: null,
  agentB: null,
  trackA: null,
  sentBytes: 0,
  received: { chunks: 0, peerIds: [], trackIds: [], pcmBase64: '' },
  notifications: [],
  notifierErrors: [],
  notifierClose: null,
  agentCloses: [],
  closesBeforeTeardown: null,
  errors: [],
};

const emit = (code) => {
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(code);
};

async function step(name, fn, { fatal = false } = {}) {
  try {
    return await fn();
  } catch (error) {
    out.errors.push(describeError(name, error));
    if (fatal) emit(1);
    return undefined;
  }
}

if (!url || !token) {
  out.errors.push({ step: 'env', message: 'SHOAL_URL and SHOAL_TOKEN must be set' });
  emit(1);
}

try {
  // The package's "exports" hide package.json from require(); read the file instead.
  const { readFileSync } = await import('node:fs');
  const pkg = new URL('./node_modules/@fishjam-cloud/js-server-sdk/package.json', import.meta.url);
  out.sdkVersion = JSON.parse(readFileSync(pkg, 'utf8')).version;
} catch {
  // informational only
}

const config = { fishjamId: url, managementToken: token };
const client = new FishjamClient(config);

// --- notifier first, so it sees roomCreated -------------------------------------------
const notifier = await step('notifier', async () => {
  const n = new FishjamWSNotifier(
    config,
    (event) => out.notifierErrors.push(String(event?.message ?? event?.type ?? event)),
    (code, reason) => {
      out.notifierClose = { code, reason };
    },
  );
  const names = [
    'roomCreated', 'roomDeleted', 'roomCrashed', 'peerAdded', 'peerDeleted', 'peerConnected',
    'peerDisconnected', 'peerMetadataUpdated', 'peerCrashed', 'trackAdded', 'trackRemoved',
    'trackMetadataUpdated',
  ];
  for (const name of names) {
    n.on(name, (message) => out.notifications.push({ event: name, ...plain(message) }));
  }
  // The SDK pipelines AuthRequest + SubscribeRequest on open and exposes no "subscribed"
  // signal: wait for the socket to open, then give the server a moment to subscribe us.
  const deadline = Date.now() + 5000;
  while (n.client?.readyState !== 1 && Date.now() < deadline) await sleep(20);
  if (n.client?.readyState !== 1) throw new Error('notifier socket did not open within 5 s');
  await sleep(300);
  return n;
});

// --- REST -------------------------------------------------------------------------------
const room = await step('createRoom', () => client.createRoom({ maxPeers: 10 }), { fatal: true });
out.room = plain(room);

const created = await step('createPeer', () => client.createPeer(room.id, { metadata: { name: 'js-sdk' } }), {
  fatal: true,
});
out.peer = plain(created.peer);
out.peerToken = created.peerToken;
out.refreshedToken = (await step('refreshPeerToken', () => client.refreshPeerToken(room.id, created.peer.id))) ?? null;
out.fetchedRoom = plain((await step('getRoom', () => client.getRoom(room.id))) ?? null);

// --- agents -----------------------------------------------------------------------------
const pcmChunks = [];
const agentCallbacks = (label) => ({
  onClose: (code, reason) => out.agentCloses.push({ agent: label, code, reason }),
  onError: (event) => out.errors.push({ step: `agent${label}.socket`, message: String(event?.message ?? event?.type) }),
});

// B (the listener) first, so it is in the room before A publishes.
const agentB = await step('createAgentB', async () => {
  const { agent, peer } = await client.createAgent(
    room.id,
    { output: { audioFormat: 'pcm16', audioSampleRate: 16000 } },
    agentCallbacks('B'),
  );
  out.agentB = plain(peer);
  agent.on('trackData', (message) => {
    out.received.chunks += 1;
    const peerId = message.peerId;
    const trackId = message.track?.id ?? null;
    if (!out.received.peerIds.includes(peerId)) out.received.peerIds.push(peerId);
    if (!out.received.trackIds.includes(trackId)) out.received.trackIds.push(trackId);
    pcmChunks.push(Buffer.from(message.data));
  });
  return agent;
});

const agentA = await step('createAgentA', async () => {
  const { agent, peer } = await client.createAgent(room.id, {}, agentCallbacks('A'));
  out.agentA = plain(peer);
  return agent;
});

if (agentA) {
  await step('agentA.publish', async () => {
    // Pipelined right after createAgent resolves, as the SDK allows (it does not wait for
    // Authenticated): the server must process AddTrack/TrackData after auth, in order.
    const track = agentA.createTrack({ encoding: 'pcm16', sampleRate: RATE, channels: 1 }, { source: 'js-sdk' });
    out.trackA = plain(track);
    const pcm = sinePcm16(TONE_HZ, TONE_SECONDS, RATE);
    const chunkBytes = (RATE * 2 * CHUNK_MS) / 1000;
    for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
      agentA.sendData(track.id, new Uint8Array(pcm.subarray(offset, offset + chunkBytes)));
    }
    out.sentBytes = pcm.length;
  });
}

await sleep(2000);
out.roomAfterAgents = plain((await step('getRoomAfterAgents', () => client.getRoom(room.id))) ?? null);
out.received.pcmBase64 = Buffer.concat(pcmChunks).toString('base64');

// --- teardown ---------------------------------------------------------------------------
// Anything closed before this point was closed by the server, not by us.
out.closesBeforeTeardown = { notifier: out.notifierClose, agents: [...out.agentCloses] };
for (const [label, agent] of [['A', agentA], ['B', agentB]]) {
  if (agent) await step(`agent${label}.disconnect`, () => agent.disconnect());
}
await sleep(300);
await step('deletePeer', () => client.deletePeer(room.id, created.peer.id));
for (const [label, peer] of [['A', out.agentA], ['B', out.agentB]]) {
  if (peer) await step(`deleteAgent${label}`, () => client.deletePeer(room.id, peer.id));
}
await step('deleteRoom', () => client.deleteRoom(room.id));
await sleep(500);
if (notifier) notifier.client?.close();

emit(0);
