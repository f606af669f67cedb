// `coffer init` on a fresh data directory: the vault it leaves has its workspace's first audit
// entries in the chain and the tree, not queued, so the log is complete from the first look and
// a server started on it finds no audit work waiting.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import BetterSqlite3 from 'better-sqlite3'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')
const work = mkdtempSync(join(tmpdir(), 'coffer-init-'))
after(() => rmSync(work, { recursive: true, force: true }))

test('coffer init leaves the new workspace’s audit entries integrated, none queued', () => {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL') env[k] = v
  const dataDir = join(work, 'data')
  const r = spawnSync(process.execPath, [BIN, 'init', '--data-dir', dataDir, '--email', 'first@example.com', '--json'], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  })
  assert.equal(r.status, 0, r.stderr.slice(0, 600))
  const out = JSON.parse(r.stdout) as { workspace: { id: string }; token: string }
  // The token itself is never put in an assertion's message.
  assert.ok(typeof out.token === 'string' && out.token.length >= 20, 'init printed an Owner token')

  const db = new BetterSqlite3(join(dataDir, 'coffer.db'), { readonly: true })
  try {
    const queued = db.prepare('SELECT count(*) AS n FROM audit_queue WHERE workspace_id = ?').get(out.workspace.id) as { n: number }
    const entries = db
      .prepare('SELECT count(*) AS n, max(seq) AS last FROM audit_entries WHERE workspace_id = ?')
      .get(out.workspace.id) as {
      n: number
      last: number
    }
    const head = db.prepare('SELECT seq FROM audit_heads WHERE workspace_id = ?').get(out.workspace.id) as { seq: number } | undefined
    assert.equal(queued.n, 0, 'no entry of the new workspace is left queued')
    assert.ok(entries.n >= 2, `the workspace's creation and its Owner's token are in the chain (got ${entries.n})`)
    assert.equal(head?.seq, entries.last, "the chain's head is the last entry")
  } finally {
    db.close()
  }
})
