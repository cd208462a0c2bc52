// shoal's /dashboard: what this node is carrying, live. The management token is asked for once and
// kept in the tab's sessionStorage; the data is /dashboard/api/stream (server-sent events, read with
// fetch so the token travels in the Authorization header). Plain DOM, no framework, no CDN.

const KEY = 'shoal-management-token';
const $ = (id) => document.getElementById(id);
const COUNTERS = [
  ['rtp_received', 'RTP in'], ['rtp_forwarded', 'RTP forwarded'], ['rtp_dropped_overload', 'dropped (overload)'],
  ['rtp_dropped_late', 'dropped (late)'], ['participant_audio_frames', 'audio frames decoded'],
  ['agent_frames_delivered', 'frames to agents'], ['agent_outbox_dropped', 'agent frames dropped'],
  ['vad_events_sent', 'voice activity events'], ['agent_playout_events', 'playout events'],
];
window.dashboard = { status: 'starting', snapshots: 0, last: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}

function ago(seconds) {
  if (seconds == null) return '–';
  const s = Math.max(0, Date.now() / 1000 - seconds);
  return s < 90 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(0)} min ago`;
}

function meter(dbov) {
  const width = dbov == null ? 0 : Math.max(0, Math.min(100, ((dbov + 70) / 70) * 100));
  return el('span', { class: 'meter' }, el('span', { style: `width:${width}%` }));
}

function trackCell(track) {
  const row = el('div', { class: 'track', 'data-track-id': track.track_id }, `${track.kind} · ${track.codec ?? '?'} `);
  if (track.level_dbov != null) {
    row.setAttribute('data-level', String(track.level_dbov));
    row.append(meter(track.level_dbov), ` ${track.level_dbov.toFixed(0)} dBov `);
    if (track.speech) row.append(el('span', { class: 'speech' }, 'speaking'));
  }
  if (track.queued_s != null) {
    row.setAttribute('data-queued', String(track.queued_s));
    row.append(`queued ${track.queued_s.toFixed(2)} s`);
  }
  return row;
}

function networkCell(network) {
  if (!network) return '–';
  const parts = [network.state];
  if (network.rtt_ms != null) parts.push(`RTT ${network.rtt_ms} ms`);
  if (network.loss != null) parts.push(`loss ${(network.loss * 100).toFixed(1)} %`);
  if (network.kbps_in != null) parts.push(`${network.kbps_in} kb/s in, ${network.kbps_out} kb/s out`);
  return parts.join(' · ');
}

async function createPeer(roomId, into) {
  const response = await fetch(`/room/${encodeURIComponent(roomId)}/peer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'webrtc', options: {} }),
  });
  const body = await response.json();
  if (!response.ok) {
    into.textContent = body.errors ?? `HTTP ${response.status}`;
    return;
  }
  const link = `${location.origin}/demo/?${new URLSearchParams({ room: roomId, token: body.data.token })}`;
  into.replaceChildren(
    el('div', {}, 'peer ', el('code', {}, body.data.peer.id), ' token ', el('code', { class: 'peer-token' }, body.data.token)),
    el('div', {}, 'join link ', el('a', { href: link, class: 'join-link', target: '_blank' }, link)),
  );
}

const openJoins = new Map(); // room id -> the element showing its last created peer (kept across renders)

function render(snapshot) {
  const rooms = snapshot.rooms;
  const peers = rooms.reduce((n, r) => n + r.peers.length, 0);
  $('summary').textContent = `node ${snapshot.node}${snapshot.cluster ? ' (cluster)' : ''} · ${rooms.length} rooms · ${peers} peers · updated ${new Date(snapshot.at * 1000).toLocaleTimeString()}`;
  $('forwarding').hidden = false;
  const nodes = snapshot.nodes ?? [{ id: snapshot.node, reachable: true, forwarding: snapshot.forwarding }];
  $('forwarding').replaceChildren(
    ...nodes.map((node) =>
      el('div', { class: 'node', 'data-node-id': node.id }, el('b', {}, `node ${node.id}: `),
        ...(node.reachable
          ? COUNTERS.map(([key, label]) => el('span', {}, ` ${label} `, el('b', {}, node.forwarding[key] ?? 0), ' ·'))
          : [el('span', { class: 'unreachable' }, `unreachable (${node.error})`)])),
    ),
  );
  $('rooms').replaceChildren(
    ...rooms.map((room) => {
      const join = openJoins.get(room.id) ?? el('div', { class: 'join' });
      openJoins.set(room.id, join);
      const table = el(
        'table', {},
        el('tr', {}, ...['peer', 'type', 'status', 'connected', 'network', 'tracks'].map((h) => el('th', {}, h))),
        ...room.peers.map((peer) =>
          el('tr', { class: 'peer', 'data-peer-id': peer.id },
            el('td', {}, el('code', {}, peer.id), peer.metadata?.name ? ` (${peer.metadata.name})` : ''),
            el('td', {}, peer.type), el('td', {}, peer.status), el('td', {}, ago(peer.connected_since)),
            el('td', {}, networkCell(peer.network)), el('td', {}, ...peer.tracks.map(trackCell))),
        ),
      );
      const button = el('button', { class: 'create-peer', type: 'button' }, 'Create peer token');
      button.onclick = () => createPeer(room.id, join);
      return el('section', { class: 'room card', 'data-room-id': room.id, 'data-node': room.node },
        el('div', {}, el('b', {}, 'room '), el('code', {}, room.id), ` · ${room.type} · node ${room.node} `, button),
        join, table);
    }),
  );
}

async function follow(token) {
  $('login').hidden = true;
  const response = await fetch('/dashboard/api/stream', { headers: { authorization: `Bearer ${token}` } });
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    return login('the server refused that token');
  }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  window.dashboard.status = 'live';
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (!data) continue;
      const snapshot = JSON.parse(data);
      window.dashboard.snapshots += 1;
      window.dashboard.last = snapshot;
      render(snapshot);
    }
  }
  window.dashboard.status = 'disconnected';
  $('summary').textContent = 'the server closed the stream; reconnecting…';
  setTimeout(() => follow(token).catch(show), 1000);
}

function show(err) {
  window.dashboard.status = `error: ${err}`;
  $('summary').textContent = `error: ${err}`;
}

function login(message = '') {
  window.dashboard.status = 'login';
  $('login').hidden = false;
  $('error').textContent = message;
  $('summary').textContent = 'enter the management token (kept in this tab only)';
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  follow(token).catch(show);
});

const saved = sessionStorage.getItem(KEY);
if (saved) follow(saved).catch(show);
else login();
