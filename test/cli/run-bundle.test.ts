// `coffer run` starts before every process it wraps, so its bundle (dist/run.cjs) loads only
// what it needs: no commander, and none of the HTTP stacks its client reaches only for other
// calls (node:http and node:https for a connection's relay, node:tls for an https:// server).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'

const RUN = join(import.meta.dirname, '..', '..', 'dist', 'run.cjs')

test('dist/run.cjs loads node:net but not commander, node:http, node:https or node:tls', () => {
  assert.ok(existsSync(RUN), 'dist/run.cjs is missing: run the tests with npm test, or npm run build first')
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(RUN)}); process.stdout.write(JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) }))`,
    ],
    { encoding: 'utf8' },
  )
  assert.equal(r.status, 0, r.stderr)
  const { builtins, files } = JSON.parse(r.stdout) as { builtins: string[]; files: string[] }
  assert.ok(builtins.includes('NativeModule net'), 'the client speaks HTTP/1.1 over node:net')
  for (const m of ['http', 'https', 'tls', '_http_client']) assert.ok(!builtins.includes(`NativeModule ${m}`), `node:${m} is loaded`)
  assert.deepEqual(
    files.filter((f) => f.includes('node_modules')),
    [],
    'no package from node_modules (commander or other) is loaded',
  )
})
