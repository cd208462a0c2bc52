// shoal's /demo: join a room with the microphone through the official ts-client and talk to the
// parrot agent the server runs in-process (examples/parrot.py). Without ?room=&token= the page asks
// the server for a new room with a parrot in it (POST /demo/api/session); with them (a join link
// from `shoal peer create` or the dashboard) it joins that room as it is.
//
// What the page measures is kept in window.demo (plain JSON) for tests: status, the microphone's
// and every remote audio track's level (dBFS) and dominant frequency, and the parrot's state.

import { FishjamClient } from '@fishjam-cloud/ts-client';

const params = new URLSearchParams(window.location.search);
const demo = { status: 'loading', room: null, peerId: null, local: null, remote: {}, parrot: null, log: [], errors: [] };
window.demo = demo;
const $ = (id) => document.getElementById(id);
const started = performance.now();

function note(text) {
  const line = `${((performance.now() - started) / 1000).toFixed(1)} s  ${text}`;
  demo.log.push(line);
  $('log').textContent = demo.log.slice(-40).join('\n');
}

function setStatus(status) {
  demo.status = status;
  $('status').textContent = status;
}

function fail(where, err) {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  demo.errors.push({ where, message });
  setStatus(`error: ${message}`);
}
window.addEventListener('unhandledrejection', (e) => fail('unhandled', e.reason));

// --- levels ------------------------------------------------------------------------------------

const audio = new AudioContext();

class Meter {
  constructor(stream) {
    this.source = audio.createMediaStreamSource(stream);
    this.analyser = audio.createAnalyser();
    this.analyser.fftSize = 2048;
    this.source.connect(this.analyser);
    this.time = new Float32Array(this.analyser.fftSize);
    this.freq = new Float32Array(this.analyser.frequencyBinCount);
  }

  read() {
    this.analyser.getFloatTimeDomainData(this.time);
    let sum = 0;
    for (const v of this.time) sum += v * v;
    const rms = Math.sqrt(sum / this.time.length);
    this.analyser.getFloatFrequencyData(this.freq);
    let peak = 0;
    for (let i = 1; i < this.freq.length; i++) if (this.freq[i] > this.freq[peak]) peak = i;
    return {
      dbfs: Math.max(-100, rms > 0 ? Math.round(20 * Math.log10(rms) * 10) / 10 : -100),
      hz: Math.round((peak * audio.sampleRate) / this.analyser.fftSize),
    };
  }
}

function show(which, reading) {
  const width = reading ? Math.max(0, Math.min(100, ((reading.dbfs + 60) / 60) * 100)) : 0;
  $(`${which}-level`).style.width = `${width}%`;
  $(`${which}-value`).textContent = reading ? `${reading.dbfs.toFixed(0)} dBFS` : '–';
}

let localMeter = null;
const remoteMeters = new Map(); // trackId -> {meter, peerId, heard: [{t, dbfs, hz}]}

setInterval(() => {
  const t = Math.round(performance.now() - started);
  demo.local = localMeter ? localMeter.read() : null;
  show('you', demo.local);
  let loudest = null;
  for (const [trackId, entry] of remoteMeters) {
    const reading = entry.meter.read();
    entry.heard.push({ t, ...reading });
    if (entry.heard.length > 200) entry.heard.shift();
    demo.remote[trackId] = { peerId: entry.peerId, ...reading, heard: entry.heard };
    if (!loudest || reading.dbfs > loudest.dbfs) loudest = reading;
  }
  show('parrot', loudest);
}, 100);

// --- the parrot's state (only for a room the demo made) ----------------------------------------

async function followParrot(roomId) {
  let seen = 0;
  for (;;) {
    try {
      const response = await fetch(`/demo/api/session/${encodeURIComponent(roomId)}`);
      if (response.status === 404) return;
      const state = await response.json();
      demo.parrot = state;
      $('state').textContent = state.state;
      $('queued').textContent = `${state.queued_s.toFixed(1)} s queued`;
      for (const event of state.events.slice(seen)) note(`parrot: ${event.event}${event.seconds ? ` (${event.seconds.toFixed(1)} s)` : ''}`);
      seen = state.events.length;
    } catch (err) {
      fail('parrot state', err);
    }
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

// --- joining ------------------------------------------------------------------------------------

async function session() {
  if (params.get('room') && params.get('token')) return { room_id: params.get('room'), token: params.get('token'), parrot: false };
  const response = await fetch('/demo/api/session', { method: 'POST' });
  const body = await response.json();
  if (!response.ok) throw new Error(body.errors ?? `HTTP ${response.status}`);
  return { ...body, parrot: true };
}

async function main() {
  setStatus('creating a room');
  const joining = await session();
  demo.room = joining.room_id;
  note(joining.parrot ? `room ${joining.room_id} with a parrot` : `joining room ${joining.room_id}`);
  const client = new FishjamClient();
  client.on('joined', (peerId) => {
    demo.peerId = peerId;
    setStatus('in the room: say something, then pause');
    note('joined');
  });
  client.on('joinError', (reason) => fail('join', JSON.stringify(reason)));
  client.on('authError', (reason) => fail('auth', reason));
  client.on('trackReady', (ctx) => {
    if (!ctx.stream || ctx.track?.kind !== 'audio') return;
    // Chromium feeds a remote stream into WebAudio only while a media element plays it too.
    const element = document.createElement('audio');
    element.autoplay = true;
    element.srcObject = new MediaStream([ctx.track]);
    document.body.append(element);
    element.play().catch((err) => fail('playback', err));
    const meter = new Meter(new MediaStream([ctx.track]));
    remoteMeters.set(ctx.trackId, { meter, peerId: ctx.endpoint?.id ?? null, heard: [] });
    note(`hearing ${ctx.endpoint?.metadata?.peer?.name ?? 'a track'}`);
  });
  client.on('trackRemoved', (ctx) => {
    remoteMeters.delete(ctx.trackId);
    delete demo.remote[ctx.trackId];
  });
  const ws = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
  setStatus('connecting');
  await client.connect({ url: ws, token: joining.token, peerMetadata: { name: 'demo' } });
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true }, video: false });
  localMeter = new Meter(stream);
  await client.addTrack(stream.getAudioTracks()[0], { type: 'microphone', paused: false });
  if (audio.state !== 'running') await audio.resume().catch(() => {});
  $('leave').hidden = false;
  $('leave').onclick = () => {
    client.disconnect();
    setStatus('left');
  };
  if (joining.parrot) followParrot(joining.room_id);
}

main().catch((err) => fail('start', err));
