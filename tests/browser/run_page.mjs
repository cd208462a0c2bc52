// Drive the test page in headless Chromium and report its state as JSON lines on stdout.
//
//   node run_page.mjs --client 0.25.1 --ws ws://127.0.0.1:5002 --token T --wav /tmp/mic.wav [options]
//
// Options:
//   --client VERSION   which bundle of dist/ to serve (a ts-client version from dist/clients.json)
//   --ws URL           the shoal WebSocket base URL given to client.connect({url})
//   --token TOKEN      the peer token
//   --wav PATH         16-bit PCM WAV played (looped) by Chromium's fake microphone
//   --mode MODE        "join" (default) or "loopback" (no server; see page/main.js)
//   --name NAME        peer metadata name (default "browser")
//   --camera SPEC      also publish Chromium's fake camera: "WxH@FPS" (e.g. 320x240@15) or "1" for its
//                      default size (default: none, microphone only)
//   --max-seconds N    stop by itself after N seconds (default 120)
//   --poll-ms N        how often to read the page's state (default 250)
//   --chromium PATH    the browser (default $CHROMIUM or /usr/bin/chromium)
//
// stdout, one JSON object per line:
//   {"type":"started", "pageUrl", "browserVersion", "bundle"}
//   {"type":"state", "elapsed", "state": window.shoal}   whenever it changed (and at least every 2 s)
//   {"type":"error", "message"}                           the page could not be read, a crash, ...
//   {"type":"exit", "reason"}                             the last line
// stdin, one command per line: "snapshot" (print the state now), "stop" (leave, close, exit).
// End of stdin also stops. Page console errors/warnings and page exceptions go to stderr.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const ROOT = dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    client: { type: 'string' },
    ws: { type: 'string', default: '' },
    token: { type: 'string', default: '' },
    wav: { type: 'string' },
    mode: { type: 'string', default: 'join' },
    name: { type: 'string', default: 'browser' },
    camera: { type: 'string', default: '' },
    'max-seconds': { type: 'string', default: '120' },
    'poll-ms': { type: 'string', default: '250' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;

function fail(message) {
  emit({ type: 'error', message });
  emit({ type: 'exit', reason: `error: ${message}` });
  process.exit(2);
}

if (!opts.client) fail('--client VERSION is required (see dist/clients.json)');
if (!opts.wav || !existsSync(opts.wav)) fail(`--wav must name an existing WAV file (got ${opts.wav})`);
if (opts.mode === 'join' && (!opts.ws || !opts.token)) fail('--ws and --token are required in join mode');
if (!existsSync(opts.chromium)) fail(`no browser at ${opts.chromium} (Debian: apt-get install chromium)`);
const bundleDir = join(ROOT, 'dist', opts.client);
if (!existsSync(join(bundleDir, 'main.js'))) fail(`${bundleDir}/main.js is missing; run: node build.mjs`);

// --- the page's origin: http://127.0.0.1 is a secure context, as getUserMedia requires -----------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

const http = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  const file = resolve(bundleDir, '.' + (path === '/' ? '/index.html' : path));
  try {
    if (!file.startsWith(bundleDir + sep) || !(await stat(file)).isFile()) throw new Error('not found');
    const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
const query = new URLSearchParams({ ws: opts.ws, token: opts.token, name: opts.name, mode: opts.mode });
if (opts.camera) query.set('camera', opts.camera);
const pageUrl = `http://127.0.0.1:${http.address().port}/index.html?${query}`;

// --- the browser ------------------------------------------------------------------------------

const browser = await chromium
  .launch({
    executablePath: opts.chromium,
    headless: true,
    // Playwright adds its own fresh --user-data-dir (a new temporary profile per launch).
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${resolve(opts.wav)}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  })
  .catch((err) => fail(`Chromium did not start: ${err.message}`));

let stopping = false;
let poller = null;
let page = null;
async function stop(reason, code = 0) {
  if (stopping) return;
  stopping = true;
  clearInterval(poller);
  if (page) {
    try {
      await Promise.race([page.evaluate(() => window.shoalStop?.()), new Promise((ok) => setTimeout(ok, 2000))]);
    } catch {
      // the page may be gone already
    }
    await snapshot(true);
  }
  await browser.close().catch(() => {});
  http.close();
  emit({ type: 'exit', reason });
  process.exit(code);
}

const context = await browser.newContext();
await context.grantPermissions(opts.camera ? ['microphone', 'camera'] : ['microphone'], {
  origin: new URL(pageUrl).origin,
});
page = await context.newPage();
page.on('console', (msg) => {
  if (msg.type() === 'error' || msg.type() === 'warning') log(`[page console.${msg.type()}] ${msg.text()}`);
});
page.on('pageerror', (err) => log(`[page exception] ${err.stack || err.message}`));
page.on('crash', () => {
  emit({ type: 'error', message: 'the page crashed' });
  stop('page crashed', 3);
});
browser.on('disconnected', () => stop('browser disconnected', 3));

// --- reporting --------------------------------------------------------------------------------

let lastText = null;
let lastEmit = 0;
let queue = Promise.resolve();
let pending = 0;

// Reads are serialized; a poll is skipped while another read is still waiting.
function snapshot(force = false) {
  if (!force && pending > 0) return queue;
  pending += 1;
  queue = queue.then(() => read(force)).finally(() => (pending -= 1));
  return queue;
}

async function read(force) {
  try {
    const text = await page.evaluate(() => JSON.stringify(window.shoal ?? null));
    if (force || text !== lastText || Date.now() - lastEmit > 2000) {
      lastText = text;
      lastEmit = Date.now();
      process.stdout.write(`{"type":"state","elapsed":${elapsed()},"state":${text}}\n`);
    }
  } catch (err) {
    if (!stopping || force) emit({ type: 'error', message: `reading the page state failed: ${err.message}` });
  }
}

emit({ type: 'started', pageUrl, browserVersion: browser.version(), bundle: bundleDir });
await page.goto(pageUrl).catch((err) => fail(`the page did not load: ${err.message}`));

poller = setInterval(() => snapshot(), Number(opts['poll-ms']));
setTimeout(() => stop('max-seconds'), Number(opts['max-seconds']) * 1000);
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = line.trim();
  if (command === 'stop') stop('stop command');
  else if (command === 'snapshot') snapshot(true);
  else if (command) emit({ type: 'error', message: `unknown command ${JSON.stringify(command)}` });
});
commands.on('close', () => stop('stdin closed'));
