// Test page: the official, unmodified @fishjam-cloud/ts-client joins a shoal room.
//
// Query string:
//   ws     the server's WebSocket base URL, e.g. ws://127.0.0.1:5002 (ts-client appends /socket/peer/websocket)
//   token  the peer token
//   name   peer metadata name (default "browser")
//   mode   "join" (default): connect, publish the microphone, play and measure every remote audio track
//          "loopback": no server; send a local oscillator through a pair of RTCPeerConnections and
//          measure it as a remote track (proves capture, playback and analysis work in this browser)
//   hz     oscillator frequency in loopback mode (default 440)
//
// Everything the page sees is kept in `window.shoal` (plain JSON data) for the driver to read:
// status, ts-client events, the socket's frames (decoded down to the message name), the local
// microphone's and every remote audio track's measured dominant frequency and level, and errors.
// `window.shoalStop()` leaves the room and closes the socket.

import { FishjamClient } from '@fishjam-cloud/ts-client';

const MEASURE_EVERY_MS = 250;
const KEEP_MEASUREMENTS = 80; // per track: the last 20 s
const KEEP_EVENTS = 500;
const KEEP_FRAMES = 300;

const params = new URLSearchParams(window.location.search);
const mode = params.get('mode') ?? 'join';
const startedAt = performance.now();
const now = () => Math.round(performance.now() - startedAt);

const state = {
  clientVersion: __TS_CLIENT_VERSION__,
  clientDependency: __TS_CLIENT_DEPENDENCY__,
  mode,
  status: 'loading',
  clock: 0, // ms since the page started, as of this state
  url: params.get('ws'),
  peerId: null,
  connect: { state: 'not started', error: null },
  authError: null,
  joinError: null,
  audioContext: null,
  local: { state: 'none', trackId: null, settings: null, error: null, measurements: [] },
  remoteTracks: {},
  events: [],
  eventCounts: {},
  socket: { created: 0, frames: [], framesDropped: 0, closes: [] },
  errors: [],
};
window.shoal = state;

function setStatus(status) {
  state.status = status;
  document.getElementById('status').textContent = status;
}

function describeError(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

function recordError(where, err) {
  state.errors.push({ t: now(), where, message: describeError(err) });
}

window.addEventListener('error', (e) => recordError('window.onerror', e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => recordError('unhandledrejection', e.reason));

// ---------------------------------------------------------------------------------------------
// The socket, observed. ts-client opens `new WebSocket(url)`; a subclass records every frame
// without changing what is sent or received, so a failure can say how far the exchange got.

const PEER_MESSAGE = {
  1: 'authenticated', 2: 'auth_request', 3: 'media_event', 4: 'rtc_stats_report',
  5: 'peer_media_event', 6: 'server_media_event',
};
const PEER_MEDIA_EVENT = {
  1: 'connect', 2: 'disconnect', 3: 'update_endpoint_metadata', 4: 'update_track_metadata',
  5: 'renegotiate_tracks', 6: 'candidate', 7: 'sdp_offer', 8: 'track_bitrates', 9: 'enable_track_variant',
  10: 'disable_track_variant', 11: 'set_target_track_variant', 12: 'unmute_track',
};
const SERVER_MEDIA_EVENT = {
  1: 'endpoint_updated', 2: 'track_updated', 3: 'tracks_added', 4: 'tracks_removed', 5: 'endpoint_added',
  6: 'endpoint_removed', 7: 'connected', 8: 'error', 9: 'offer_data', 10: 'candidate', 11: 'sdp_answer',
  12: 'vad_notification', 13: 'track_variant_switched', 14: 'track_variant_disabled', 15: 'track_variant_enabled',
};

// The fields of one protobuf message: [{field, wire, value}], value = bytes for length-delimited.
function protoFields(bytes) {
  const fields = [];
  let pos = 0;
  const varint = () => {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const b = bytes[pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const length = varint();
      value = bytes.subarray(pos, pos + length);
      pos += length;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`wire type ${wire}`);
    fields.push({ field, wire, value });
  }
  return fields;
}

const text = (bytes) => new TextDecoder().decode(bytes);

function describeFrame(data) {
  if (typeof data === 'string') return { name: 'text frame (not protobuf; ts-client ignores it)', bytes: data.length };
  const bytes = new Uint8Array(data);
  const out = { name: '?', bytes: bytes.length };
  try {
    const [top] = protoFields(bytes);
    if (!top) return { ...out, name: 'empty PeerMessage' };
    out.name = PEER_MESSAGE[top.field] ?? `field ${top.field}`;
    if (top.wire !== 2) return out;
    const inner = protoFields(top.value);
    if (top.field === 2) {
      out.sdkVersion = text(inner.find((f) => f.field === 2)?.value ?? new Uint8Array());
    } else if (top.field === 1) {
      out.roomType = inner.find((f) => f.field === 1)?.value ?? 0;
    } else if (top.field === 5 || top.field === 6) {
      const names = top.field === 5 ? PEER_MEDIA_EVENT : SERVER_MEDIA_EVENT;
      const event = inner[0];
      out.name += `.${event ? names[event.field] ?? `field ${event.field}` : '(empty)'}`;
      if (top.field === 6 && event?.field === 7 && event.wire === 2) {
        const endpointId = protoFields(event.value).find((f) => f.field === 1);
        out.endpointId = endpointId ? text(endpointId.value) : '';
      }
    }
  } catch (err) {
    out.decodeError = describeError(err);
  }
  return out;
}

function recordFrame(direction, data) {
  if (state.socket.frames.length >= KEEP_FRAMES) {
    state.socket.framesDropped += 1;
    return;
  }
  state.socket.frames.push({ t: now(), dir: direction, ...describeFrame(data) });
}

const NativeWebSocket = window.WebSocket;
class ObservedWebSocket extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    state.socket.created += 1;
    state.socket.frames.push({ t: now(), dir: 'open', name: `new WebSocket(${url})` });
    this.addEventListener('message', (e) => recordFrame('in', e.data));
    this.addEventListener('close', (e) =>
      state.socket.closes.push({ t: now(), code: e.code, reason: e.reason, wasClean: e.wasClean }),
    );
  }

  send(data) {
    recordFrame('out', data);
    super.send(data);
  }
}
window.WebSocket = ObservedWebSocket;

// ---------------------------------------------------------------------------------------------
// Measuring audio: an AnalyserNode per stream, read every MEASURE_EVERY_MS.

const audioContext = new AudioContext();
state.audioContext = { state: audioContext.state, sampleRate: audioContext.sampleRate };
audioContext.onstatechange = () => {
  state.audioContext.state = audioContext.state;
};
// The analysers are pulled through a muted gain into the destination, so the graph runs.
const sink = audioContext.createGain();
sink.gain.value = 0;
sink.connect(audioContext.destination);

class Meter {
  constructor(stream) {
    this.source = audioContext.createMediaStreamSource(stream);
    this.analyser = audioContext.createAnalyser();
    this.analyser.fftSize = 8192;
    this.analyser.smoothingTimeConstant = 0;
    this.source.connect(this.analyser);
    this.analyser.connect(sink);
    this.spectrum = new Float32Array(this.analyser.frequencyBinCount);
    this.samples = new Float32Array(this.analyser.fftSize);
  }

  // {hz, rms, peakDb}: the strongest spectral peak (parabolic interpolation between bins) and
  // the RMS level of the last fftSize samples, full scale = 1.
  measure() {
    this.analyser.getFloatFrequencyData(this.spectrum);
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const x of this.samples) sum += x * x;
    const rms = Math.sqrt(sum / this.samples.length);
    let best = 1;
    for (let i = 2; i < this.spectrum.length - 1; i++) if (this.spectrum[i] > this.spectrum[best]) best = i;
    const peakDb = this.spectrum[best];
    if (!Number.isFinite(peakDb)) return { t: now(), hz: null, rms: round(rms, 5), peakDb: null };
    const [a, b, c] = [this.spectrum[best - 1], peakDb, this.spectrum[best + 1]];
    const denominator = a - 2 * b + c;
    const shift = Number.isFinite(denominator) && denominator !== 0 ? (0.5 * (a - c)) / denominator : 0;
    const hz = ((best + shift) * audioContext.sampleRate) / this.analyser.fftSize;
    return { t: now(), hz: round(hz, 1), rms: round(rms, 5), peakDb: round(peakDb, 1) };
  }

  stop() {
    this.source.disconnect();
    this.analyser.disconnect();
  }
}

const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;

const meters = new Map(); // key -> {meter, target (object with a measurements array)}

function startMeter(key, stream, target) {
  try {
    meters.set(key, { meter: new Meter(stream), target });
  } catch (err) {
    recordError(`meter ${key}`, err);
  }
}

function stopMeter(key) {
  meters.get(key)?.meter.stop();
  meters.delete(key);
}

setInterval(() => {
  state.clock = now();
  for (const [key, { meter, target }] of meters) {
    try {
      target.measurements.push(meter.measure());
      if (target.measurements.length > KEEP_MEASUREMENTS) target.measurements.shift();
      target.measured = (target.measured ?? 0) + 1;
    } catch (err) {
      recordError(`measure ${key}`, err);
    }
  }
}, MEASURE_EVERY_MS);

// ---------------------------------------------------------------------------------------------
// Remote audio: play it and measure it.

function playRemote(trackId, peerId, metadata, stream, track) {
  const entry = (state.remoteTracks[trackId] ??= { added: null, measurements: [] });
  Object.assign(entry, { peerId, metadata, ready: now(), kind: track?.kind ?? null, playing: false, playError: null });
  if (!stream || track?.kind !== 'audio') return;

  // Playing through a media element is what a real app does, and Chromium only feeds a remote
  // WebRTC stream into WebAudio while the stream is also attached to a media element.
  const audio = document.createElement('audio');
  audio.id = `audio-${trackId}`;
  audio.autoplay = true;
  audio.srcObject = stream;
  audio.addEventListener('playing', () => {
    entry.playing = true;
  });
  document.getElementById('players').append(audio);
  audio.play().catch((err) => {
    entry.playError = describeError(err);
  });
  track.addEventListener('ended', () => {
    entry.ended = now();
  });
  stopMeter(trackId);
  startMeter(trackId, stream, entry);
}

function forgetRemote(trackId) {
  stopMeter(trackId);
  document.getElementById(`audio-${trackId}`)?.remove();
  if (state.remoteTracks[trackId]) state.remoteTracks[trackId].removed = now();
}

// ---------------------------------------------------------------------------------------------
// The microphone: Chromium's fake capture device (--use-file-for-fake-audio-capture).
// Echo cancellation, noise suppression and gain control would reshape a test tone, so they
// are off: the test checks that the tone arrives, not what a voice processor makes of it.

async function openMicrophone() {
  state.local.state = 'capturing';
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    video: false,
  });
  const [track] = stream.getAudioTracks();
  state.local.state = 'captured';
  state.local.label = track.label;
  state.local.settings = track.getSettings();
  startMeter('local', stream, state.local);
  return { stream, track };
}

// ---------------------------------------------------------------------------------------------
// ts-client events, each recorded with a JSON summary of its arguments.

const summarizePeer = (peer) => ({
  id: peer?.id,
  type: peer?.type,
  metadata: peer?.metadata ?? null,
  tracks: peer?.tracks ? [...peer.tracks.keys()] : [],
});

const summarizeTrack = (ctx) => ({
  trackId: ctx?.trackId,
  peerId: ctx?.endpoint?.id ?? null,
  metadata: ctx?.metadata ?? null,
  kind: ctx?.track?.kind ?? null,
});

const SUMMARIES = {
  socketOpen: () => ({}),
  socketError: (e) => ({ type: e?.type }),
  socketClose: (e) => ({ code: e?.code, reason: e?.reason, wasClean: e?.wasClean }),
  authError: (reason) => ({ reason }),
  joinError: (reason) => ({ reason: typeof reason === 'string' ? reason : describeError(reason) }),
  joined: (peerId, peers, components) => ({
    peerId,
    peers: (peers ?? []).map(summarizePeer),
    components: (components ?? []).map((c) => c?.id),
  }),
  peerJoined: summarizePeer,
  peerLeft: summarizePeer,
  peerUpdated: summarizePeer,
  trackAdded: summarizeTrack,
  trackReady: summarizeTrack,
  trackRemoved: summarizeTrack,
  trackUpdated: summarizeTrack,
  connectionError: (e) => ({ message: e?.message }),
};

const OTHER_EVENTS = [
  'connectionStarted', 'authSuccess', 'disconnected', 'reconnectionStarted', 'reconnected',
  'reconnectionRetriesLimitReached', 'componentAdded', 'componentRemoved', 'componentUpdated',
  'localTrackAdded', 'localTrackRemoved', 'localTrackReplaced', 'localTrackMuted', 'localTrackUnmuted',
  'localPeerMetadataChanged', 'localTrackMetadataChanged', 'disconnectRequested', 'dataChannelsReady',
  'dataChannelsError', 'tracksPriorityChanged', 'bandwidthEstimationChanged', 'targetTrackEncodingRequested',
];

function safeDetail(args) {
  try {
    return JSON.parse(JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  } catch {
    return args.map((a) => String(a));
  }
}

function recordEvent(name, args) {
  const summarize = SUMMARIES[name];
  let detail;
  try {
    detail = summarize ? summarize(...args) : safeDetail(args.filter((a) => !(a instanceof MediaStreamTrack)));
  } catch (err) {
    detail = { summaryError: describeError(err) };
  }
  state.eventCounts[name] = (state.eventCounts[name] ?? 0) + 1;
  if (state.events.length < KEEP_EVENTS) state.events.push({ t: now(), name, detail });
}

function observe(client) {
  for (const name of [...Object.keys(SUMMARIES), ...OTHER_EVENTS]) {
    client.on(name, (...args) => recordEvent(name, args));
  }
  client.on('socketOpen', () => state.status === 'connecting' && setStatus('socket open'));
  client.on('authSuccess', () => setStatus('authenticated'));
  client.on('authError', (reason) => {
    state.authError = reason;
    setStatus('auth error');
  });
  client.on('joinError', (reason) => {
    state.joinError = SUMMARIES.joinError(reason).reason;
    setStatus('join error');
  });
  client.on('joined', (peerId) => {
    state.peerId = peerId;
    setStatus('joined');
  });
  client.on('trackAdded', (ctx) => {
    const { trackId, peerId, metadata } = summarizeTrack(ctx);
    // Updated in place: a running meter keeps a reference to this entry.
    const entry = (state.remoteTracks[trackId] ??= { measurements: [] });
    Object.assign(entry, { peerId, metadata, added: now() });
  });
  client.on('trackReady', (ctx) => {
    const { trackId, peerId, metadata } = summarizeTrack(ctx);
    playRemote(trackId, peerId, metadata, ctx.stream, ctx.track);
  });
  client.on('trackRemoved', (ctx) => forgetRemote(ctx.trackId));
}

// ---------------------------------------------------------------------------------------------

async function join() {
  const url = params.get('ws');
  const token = params.get('token');
  if (!url || !token) throw new Error('the page needs ?ws=<server ws url>&token=<peer token>');
  const { track } = await openMicrophone();

  const client = new FishjamClient();
  window.shoalClient = client;
  observe(client);
  window.shoalStop = async () => {
    try {
      client.leave();
    } finally {
      client.disconnect();
    }
  };

  setStatus('connecting');
  state.connect.state = 'pending';
  try {
    await client.connect({ url, token, peerMetadata: { name: params.get('name') ?? 'browser' } });
    state.connect.state = 'resolved';
  } catch (err) {
    state.connect = { state: 'rejected', error: describeError(err) };
    return;
  }

  state.local.state = 'adding';
  setStatus('publishing');
  const trackId = await client.addTrack(track, { type: 'microphone', paused: false });
  Object.assign(state.local, { state: 'published', trackId });
  setStatus('published');
}

// Loopback: an oscillator -> RTCPeerConnection -> RTCPeerConnection -> the same play-and-measure
// path as a remote ts-client track. No server, no ts-client.
async function loopback() {
  await openMicrophone();
  const hz = Number(params.get('hz') ?? 440);
  const oscillator = audioContext.createOscillator();
  oscillator.frequency.value = hz;
  const gain = audioContext.createGain();
  gain.gain.value = 0.25;
  const destination = audioContext.createMediaStreamDestination();
  oscillator.connect(gain).connect(destination);
  oscillator.start();

  const sender = new RTCPeerConnection();
  const receiver = new RTCPeerConnection();
  window.shoalStop = async () => {
    sender.close();
    receiver.close();
  };
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  receiver.ontrack = (e) => playRemote('loopback', 'loopback', { type: 'customAudio' }, e.streams[0], e.track);
  const [tone] = destination.stream.getAudioTracks();
  sender.addTrack(tone, destination.stream);
  const offer = await sender.createOffer();
  await sender.setLocalDescription(offer);
  await receiver.setRemoteDescription(offer);
  const answer = await receiver.createAnswer();
  await receiver.setLocalDescription(answer);
  await sender.setRemoteDescription(answer);
  setStatus('loopback');
}

async function main() {
  if (audioContext.state !== 'running') {
    await audioContext.resume().catch((err) => recordError('AudioContext.resume', err));
  }
  if (mode === 'loopback') await loopback();
  else await join();
}

main().catch((err) => {
  recordError('main', err);
  if (state.local.state === 'capturing') Object.assign(state.local, { state: 'failed', error: describeError(err) });
  if (state.local.state === 'adding') Object.assign(state.local, { state: 'failed', error: describeError(err) });
  setStatus('failed');
});
