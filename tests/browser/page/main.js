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
//   camera also open the camera and publish it (join mode) with metadata {type: "camera", paused: false};
//          the value asks getUserMedia for a size and frame rate, "WxH@FPS" (e.g. 320x240@15), or is "1"
//          for the browser's default. Absent or empty: microphone only.
//
// Everything the page sees is kept in `window.shoal` (plain JSON data) for the driver to read:
// status, ts-client events, the socket's frames (decoded down to the message name), the local
// microphone's and every remote audio track's measured dominant frequency and level, the local
// camera preview's and every remote video track's pixel changes, the browser's video codecs, every
// RTCPeerConnection's SDP (summarized per m-line) and RTP statistics, and errors.
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
  camera: null, // with ?camera: {state, trackId, settings, error, preview: pixel-change samples of the local <video>}
  codecs: videoCodecs(),
  rtc: { connections: [] },
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
// The browser's video codecs, and every RTCPeerConnection ts-client makes, observed the same way:
// a subclass records each local and remote description (one line per m-line: kind, mid,
// direction, codecs) and, every second, the RTP statistics. Nothing the client does is changed.

function videoCodecs() {
  const describe = (capabilities) =>
    (capabilities?.codecs ?? []).map((c) => (c.sdpFmtpLine ? `${c.mimeType} ${c.sdpFmtpLine}` : c.mimeType));
  try {
    return {
      send: describe(RTCRtpSender.getCapabilities('video')),
      receive: describe(RTCRtpReceiver.getCapabilities('video')),
    };
  } catch (err) {
    return { error: describeError(err) };
  }
}

const KEEP_DESCRIPTIONS = 12; // per connection

// "video mid=1 sendonly: 96 VP8/90000, 97 rtx/90000 apt=96" for each m-line of an SDP.
function summarizeSdp(sdp) {
  const sections = [];
  let section = null;
  for (const line of (sdp ?? '').split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const [kind, port] = line.slice(2).split(' ');
      section = { kind, port, mid: null, direction: null, codecs: new Map() };
      sections.push(section);
    } else if (section) {
      const rtpmap = /^a=rtpmap:(\d+) (.+)$/.exec(line);
      const fmtp = /^a=fmtp:(\d+) (.+)$/.exec(line);
      if (line.startsWith('a=mid:')) section.mid = line.slice(6);
      else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) section.direction = line.slice(2);
      else if (rtpmap) section.codecs.set(rtpmap[1], `${rtpmap[1]} ${rtpmap[2]}`);
      else if (fmtp && section.codecs.has(fmtp[1])) section.codecs.set(fmtp[1], `${section.codecs.get(fmtp[1])} ${fmtp[2]}`);
    }
  }
  return sections.map(
    (m) => `${m.kind} mid=${m.mid} ${m.direction ?? '?'}${m.port === '0' ? ' (port 0)' : ''}: ${[...m.codecs.values()].join(', ')}`,
  );
}

const peerConnections = []; // [{pc, entry}]
const NativeRTCPeerConnection = window.RTCPeerConnection;
class ObservedRTCPeerConnection extends NativeRTCPeerConnection {
  constructor(...args) {
    super(...args);
    const entry = {
      index: state.rtc.connections.length,
      created: now(),
      connectionState: this.connectionState,
      states: [],
      descriptions: [],
      stats: null,
    };
    state.rtc.connections.push(entry);
    peerConnections.push({ pc: this, entry });
    // A description is recorded when its summary changes (not its candidates or ICE credentials).
    const seen = { local: null, remote: null };
    this.addEventListener('signalingstatechange', () => {
      entry.states.push(`${now()} ms signaling ${this.signalingState}`);
      const descriptions = {
        local: this.pendingLocalDescription ?? this.currentLocalDescription,
        remote: this.pendingRemoteDescription ?? this.currentRemoteDescription,
      };
      for (const [side, description] of Object.entries(descriptions)) {
        if (!description) continue;
        const mlines = summarizeSdp(description.sdp);
        const key = JSON.stringify([description.type, mlines]);
        if (key === seen[side]) continue;
        seen[side] = key;
        entry.descriptions.push({ t: now(), side, type: description.type, mlines });
        if (entry.descriptions.length > KEEP_DESCRIPTIONS) entry.descriptions.shift();
      }
    });
    this.addEventListener('connectionstatechange', () => {
      entry.connectionState = this.connectionState;
      entry.states.push(`${now()} ms connection ${this.connectionState}`);
    });
  }
}
window.RTCPeerConnection = ObservedRTCPeerConnection;

const RTP_FIELDS = [
  'mid', 'ssrc', 'packetsSent', 'packetsReceived', 'packetsLost', 'bytesSent', 'bytesReceived', 'framesEncoded',
  'framesDecoded', 'framesSent', 'framesReceived', 'framesDropped', 'keyFramesEncoded', 'keyFramesDecoded',
  'frameWidth', 'frameHeight', 'framesPerSecond', 'qualityLimitationReason', 'encoderImplementation',
  'decoderImplementation', 'pliCount', 'firCount', 'nackCount', 'jitter',
];

async function readRtpStats({ pc, entry }) {
  if (pc.connectionState === 'closed') return;
  const report = await pc.getStats();
  const codecs = new Map();
  report.forEach(
    (s) => s.type === 'codec' && codecs.set(s.id, `${s.mimeType} pt=${s.payloadType}${s.sdpFmtpLine ? ` ${s.sdpFmtpLine}` : ''}`),
  );
  const rtp = [];
  report.forEach((s) => {
    if (s.type !== 'outbound-rtp' && s.type !== 'inbound-rtp') return;
    const row = { type: s.type, kind: s.kind, codec: codecs.get(s.codecId) ?? null };
    for (const key of RTP_FIELDS) if (s[key] !== undefined) row[key] = s[key];
    rtp.push(row);
  });
  entry.stats = { t: now(), rtp };
}

setInterval(() => {
  for (const observed of peerConnections) {
    readRtpStats(observed).catch((err) => {
      observed.entry.statsError = describeError(err);
    });
  }
}, 1000);

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

// ---------------------------------------------------------------------------------------------
// Watching video: every VIDEO_SAMPLE_EVERY_MS, draw the <video> onto a small canvas and compare it
// with the previous sample. A sample "changed" when enough pixels differ (a frozen or black video
// gives identical samples). `videoWidth`/`videoHeight` are the decoded size, not the canvas's.

const VIDEO_SAMPLE_EVERY_MS = 200;
const SAMPLE_WIDTH = 160;
const SAMPLE_HEIGHT = 120;
const PIXEL_DIFFERS = 24; // summed |ΔR|+|ΔG|+|ΔB| above which a pixel counts as different
const CHANGED_FRACTION = 0.001; // of the canvas's pixels, for the sample to count as changed
const KEEP_VIDEO_SAMPLES = 50; // per video: the last 10 s

class VideoWatcher {
  constructor(video, target) {
    this.video = video;
    this.target = target;
    this.canvas = document.createElement('canvas');
    this.canvas.width = SAMPLE_WIDTH;
    this.canvas.height = SAMPLE_HEIGHT;
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
    this.previous = null;
    Object.assign(target, {
      videoWidth: 0, videoHeight: 0, readyState: 0, samples: 0, changes: 0, presentedFrames: 0, videoSamples: [],
    });
    if ('requestVideoFrameCallback' in video) {
      const onFrame = (_now, frame) => {
        target.presentedFrames = frame.presentedFrames;
        if (this.video) video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
  }

  sample() {
    const { video, target } = this;
    Object.assign(target, { videoWidth: video.videoWidth, videoHeight: video.videoHeight, readyState: video.readyState });
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) return;
    this.context.drawImage(video, 0, 0, SAMPLE_WIDTH, SAMPLE_HEIGHT);
    const pixels = this.context.getImageData(0, 0, SAMPLE_WIDTH, SAMPLE_HEIGHT).data;
    let luma = 0;
    let differing = 0;
    const previous = this.previous;
    for (let i = 0; i < pixels.length; i += 4) {
      luma += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
      if (
        previous &&
        Math.abs(pixels[i] - previous[i]) + Math.abs(pixels[i + 1] - previous[i + 1]) + Math.abs(pixels[i + 2] - previous[i + 2]) >
          PIXEL_DIFFERS
      ) {
        differing += 1;
      }
    }
    this.previous = pixels;
    const count = pixels.length / 4;
    const record = { t: now(), luma: round(luma / count, 1) };
    if (previous) {
      record.differing = round(differing / count, 4);
      record.changed = differing / count >= CHANGED_FRACTION;
      if (record.changed) target.changes += 1;
    }
    target.samples += 1;
    target.videoSamples.push(record);
    if (target.videoSamples.length > KEEP_VIDEO_SAMPLES) target.videoSamples.shift();
  }

  stop() {
    this.video = null;
  }
}

const watchers = new Map(); // key -> VideoWatcher

function watchVideo(key, video, target) {
  watchers.get(key)?.stop();
  try {
    watchers.set(key, new VideoWatcher(video, target));
  } catch (err) {
    recordError(`video watcher ${key}`, err);
  }
}

function unwatchVideo(key) {
  watchers.get(key)?.stop();
  watchers.delete(key);
}

setInterval(() => {
  for (const [key, watcher] of watchers) {
    try {
      watcher.sample();
    } catch (err) {
      recordError(`video sample ${key}`, err);
      unwatchVideo(key);
    }
  }
}, VIDEO_SAMPLE_EVERY_MS);

// A muted, autoplaying <video> for a stream; `entry.playing` turns true on its `playing` event.
function videoElement(id, stream, entry) {
  const video = document.createElement('video');
  video.id = id;
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  video.width = SAMPLE_WIDTH;
  video.height = SAMPLE_HEIGHT;
  video.srcObject = stream;
  video.addEventListener('playing', () => {
    entry.playing = true;
  });
  document.getElementById('players').append(video);
  video.play().catch((err) => {
    entry.playError = describeError(err);
  });
  return video;
}

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
  if (stream && track?.kind === 'video') {
    // Only this track: the stream ts-client hands over may hold the peer's audio too.
    document.getElementById(`video-${trackId}`)?.remove();
    const video = videoElement(`video-${trackId}`, new MediaStream([track]), entry);
    track.addEventListener('ended', () => {
      entry.ended = now();
    });
    watchVideo(trackId, video, entry);
    return;
  }
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
  unwatchVideo(trackId);
  document.getElementById(`audio-${trackId}`)?.remove();
  document.getElementById(`video-${trackId}`)?.remove();
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

// The camera: Chromium's fake capture device (--use-fake-device-for-media-stream), a moving
// test pattern. Its local preview is watched like a remote video, which checks the pixel-change
// detection itself.

function cameraConstraints(spec) {
  const match = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(spec);
  if (!match) return true;
  const [, width, height, fps] = match.map(Number);
  return { width: { ideal: width }, height: { ideal: height }, ...(fps ? { frameRate: { ideal: fps } } : {}) };
}

async function openCamera(spec) {
  state.camera = { state: 'capturing', spec, trackId: null, label: null, settings: null, error: null, preview: {} };
  const stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: cameraConstraints(spec) });
  const [track] = stream.getVideoTracks();
  Object.assign(state.camera, { state: 'captured', label: track.label, settings: track.getSettings() });
  watchVideo('camera', videoElement('camera-preview', stream, state.camera.preview), state.camera.preview);
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
    // voice activity of the track, as the server reports it (vad_notification)
    ctx.on('voiceActivityChanged', (changed) => {
      (entry.vad ??= []).push({ t: now(), status: changed.vadStatus });
      recordEvent('voiceActivityChanged', [{ trackId: changed.trackId, vadStatus: changed.vadStatus }]);
    });
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
  const cameraSpec = params.get('camera');
  const camera = cameraSpec ? await openCamera(cameraSpec) : null;

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
  if (camera) {
    state.camera.state = 'adding';
    const cameraTrackId = await client.addTrack(camera.track, { type: 'camera', paused: false });
    Object.assign(state.camera, { state: 'published', trackId: cameraTrackId });
  }
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
  if (state.camera && ['capturing', 'adding'].includes(state.camera.state)) {
    Object.assign(state.camera, { state: 'failed', error: describeError(err) });
  }
  setStatus('failed');
});
