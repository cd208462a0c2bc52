// Open one of the server's own pages (/demo, /dashboard) in headless Chromium and obey commands.
//
//   node open_url.mjs --url http://127.0.0.1:5002/demo/ [--wav /tmp/mic.wav] [--chromium PATH]
//
// stdin, one JSON command per line, each answered on stdout by {"id", "ok", "value"|"error"}:
//   {"id": 1, "op": "eval", "expr": "window.demo"}          the expression's value (JSON)
//   {"id": 2, "op": "fill", "selector": "#token", "text": "..."}
//   {"id": 3, "op": "click", "selector": "#save"}
//   {"id": 4, "op": "screenshot", "path": "/tmp/x.png"}     a full-page PNG
//   {"id": 5, "op": "stop"}                                   close the browser and exit
// First line on stdout: {"type": "ready"} once the page has loaded. Page console errors go to stderr.

import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    wav: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];
if (opts.wav) args.push(`--use-file-for-fake-audio-capture=${resolve(opts.wav)}`);
const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args });
const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
await context.grantPermissions(['microphone'], { origin: new URL(opts.url).origin });
const page = await context.newPage();
page.on('console', (msg) => {
  if (msg.type() === 'error' || msg.type() === 'warning') process.stderr.write(`[page console.${msg.type()}] ${msg.text()}\n`);
});
page.on('pageerror', (err) => process.stderr.write(`[page exception] ${err.stack || err.message}\n`));
await page.goto(opts.url);
emit({ type: 'ready' });

async function run(command) {
  switch (command.op) {
    case 'eval':
      return page.evaluate((expr) => JSON.parse(JSON.stringify(eval(expr) ?? null)), command.expr);
    case 'fill':
      return page.fill(command.selector, command.text);
    case 'click':
      return page.click(command.selector);
    case 'screenshot':
      await page.screenshot({ path: command.path, fullPage: true });
      return command.path;
    case 'stop':
      await browser.close();
      emit({ id: command.id, ok: true, value: null });
      process.exit(0);
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    emit({ id: command.id, ok: true, value: (await run(command)) ?? null });
  } catch (err) {
    emit({ id: command.id, ok: false, error: err.message });
  }
}
await browser.close();
