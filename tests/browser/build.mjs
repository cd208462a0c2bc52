// Bundle the test page once per ts-client version listed in package.json.
//
// Every dependency that is the official client is a version under test:
//   "@fishjam-cloud/ts-client": "0.25.1"                          (the package itself)
//   "ts-client-next": "npm:@fishjam-cloud/ts-client@0.26.0"       (an npm alias, for a second version)
// For each one, page/main.js is bundled with its `@fishjam-cloud/ts-client` import pointed at
// that dependency, into dist/<version>/ (main.js + index.html). dist/clients.json lists them.
//
// Usage: node build.mjs   (run by the pytest session fixture in conftest.py)

import { readFileSync, writeFileSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = dirname(fileURLToPath(import.meta.url));
const OFFICIAL = '@fishjam-cloud/ts-client';
const DIST = join(ROOT, 'dist');

function clientsUnderTest() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const clients = [];
  for (const [name, spec] of Object.entries(pkg.dependencies ?? {})) {
    let pinned;
    if (name === OFFICIAL) pinned = spec;
    else if (spec.startsWith(`npm:${OFFICIAL}@`)) pinned = spec.slice(`npm:${OFFICIAL}@`.length);
    else continue;
    let installed;
    try {
      installed = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'));
    } catch {
      throw new Error(`${name} is not installed in ${join(ROOT, 'node_modules')}; run: npm ci`);
    }
    if (installed.name !== OFFICIAL || installed.version !== pinned) {
      throw new Error(
        `node_modules/${name} is ${installed.name}@${installed.version}, but package.json pins ` +
          `${OFFICIAL}@${pinned}; run: npm ci`,
      );
    }
    if (clients.some((c) => c.version === pinned)) throw new Error(`${OFFICIAL}@${pinned} is listed twice`);
    clients.push({ version: pinned, dependency: name });
  }
  if (clients.length === 0) throw new Error(`package.json lists no ${OFFICIAL} dependency`);
  return clients;
}

const clients = clientsUnderTest();
rmSync(DIST, { recursive: true, force: true });
for (const { version, dependency } of clients) {
  const outdir = join(DIST, version);
  mkdirSync(outdir, { recursive: true });
  await esbuild.build({
    entryPoints: [join(ROOT, 'page', 'main.js')],
    bundle: true,
    format: 'esm',
    target: 'chrome110',
    outfile: join(outdir, 'main.js'),
    sourcemap: 'inline',
    logLevel: 'warning',
    alias: dependency === OFFICIAL ? {} : { [OFFICIAL]: dependency },
    define: {
      __TS_CLIENT_VERSION__: JSON.stringify(version),
      __TS_CLIENT_DEPENDENCY__: JSON.stringify(dependency),
    },
  });
  copyFileSync(join(ROOT, 'page', 'index.html'), join(outdir, 'index.html'));
}
writeFileSync(join(DIST, 'clients.json'), JSON.stringify(clients, null, 2) + '\n');
console.log(`built ${clients.map((c) => `${c.dependency}@${c.version}`).join(', ')} into ${DIST}`);
