// Bundle the /demo page (web/demo/main.js with the official @fishjam-cloud/ts-client) into web/dist/.
// Run by scripts/serve.sh and scripts/test.sh after `npm ci`; the server serves web/dist at /demo/.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = dirname(fileURLToPath(import.meta.url));
const DIST = join(ROOT, 'dist');
mkdirSync(DIST, { recursive: true });
await esbuild.build({
  entryPoints: [join(ROOT, 'demo', 'main.js')],
  bundle: true,
  format: 'esm',
  target: 'chrome110',
  outfile: join(DIST, 'demo.js'),
  logLevel: 'warning',
});
copyFileSync(join(ROOT, 'demo', 'index.html'), join(DIST, 'index.html'));
console.log(`built the demo page into ${DIST}`);
