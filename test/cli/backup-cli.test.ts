// Backups as an operator runs them with the built CLI, on SQLite and PostgreSQL: `coffer
// backup create` while the server runs, `restore` refused until it is stopped, and after the
// restore `coffer audit verify` on a machine that saw the newer log accepts the shorter one
// only because a signed restore record covers it — without one it is still exit 2.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { BIN, childEnv, ensureBuilt, request, startServer, stopChild } from '../helpers/child-server.js'
import { describeEachEngine } from '../helpers/engines.js'
import type { EngineName } from '../helpers/harness.js'
import { createTestDatabase } from '../helpers/pg.js'

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI without blocking the event loop (a server child is piping output meanwhile). */
function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    c.on('exit', (status) => resolve({ status, stdout, stderr }))
  })
}

describeEachEngine((engine: EngineName) => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-backup-cli-'))
  const dataDir = join(work, 'data')
  const stateDir = join(work, 'state')
  const stateFile = join(stateDir, 'coffer', 'audit-checkpoints.json')
  let settings: Record<string, string> = {}
  let ownerUrl = ''
  let drop: (() => Promise<void>) | undefined
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  let token = ''
  let slug = ''
  const E = () => `/v1/workspaces/${slug}/projects/app/environments/production`

  const hostEnv = () => childEnv({ ...settings, COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'warn', NO_COLOR: '1' })
  const clientEnv = () =>
    childEnv({
      COFFER_URL: server!.url,
      COFFER_TOKEN: token,
      XDG_STATE_HOME: stateDir,
      NO_COLOR: '1',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x',
    })
  const ok = async (args: string[], env: NodeJS.ProcessEnv) => {
    const r = await run(args, env)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 600)}`)
    return r
  }
  // One port for every start: the client remembers what it saw per server URL.
  let port = 0
  const start = async () => {
    if (!port) {
      const probe = createServer()
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
      port = (probe.address() as AddressInfo).port
      await new Promise((r) => probe.close(r))
    }
    server = await startServer(['--port', String(port)], hostEnv())
  }
  const stop = async () => {
    if (server) await stopChild(server.child)
    server = undefined
  }

  /** Reads or writes the restore records row directly, as an attacker with the database would. */
  async function restoreRow(value?: Buffer | null): Promise<Buffer | undefined> {
    if (engine === 'sqlite') {
      const db = new BetterSqlite3(join(dataDir, 'coffer.db'))
      try {
        const row = db.prepare("SELECT value FROM meta WHERE key = 'audit_restore_records'").get() as { value: Buffer } | undefined
        if (value === null) db.prepare("DELETE FROM meta WHERE key = 'audit_restore_records'").run()
        else if (value) db.prepare("INSERT INTO meta (key, value) VALUES ('audit_restore_records', ?)").run(value)
        return row?.value
      } finally {
        db.close()
      }
    }
    const c = new pg.Client({ connectionString: ownerUrl })
    await c.connect()
    try {
      const { rows } = await c.query("SELECT value FROM meta WHERE key = 'audit_restore_records'")
      if (value === null) await c.query("DELETE FROM meta WHERE key = 'audit_restore_records'")
      else if (value) await c.query("INSERT INTO meta (key, value) VALUES ('audit_restore_records', $1)", [value])
      return rows[0]?.value as Buffer | undefined
    } finally {
      await c.end()
    }
  }

  before(async () => {
    ensureBuilt()
    if (engine === 'postgres') {
      const db = await createTestDatabase({ appRole: true })
      settings = { DATABASE_URL: db.appUrl!, COFFER_MIGRATION_DATABASE_URL: db.url }
      ownerUrl = db.url
      drop = db.drop
    }
    const init = await ok(['init', '--email', 'ops@example.com', '--workspace', 'Ops', '--json'], hostEnv())
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    slug = j.workspace.slug
    await start()
    assert.equal((await request(server!.url, token, 'POST', `/v1/workspaces/${slug}/projects`, { name: 'App' })).status, 201)
    for (let i = 0; i < 3; i++)
      assert.equal((await request(server!.url, token, 'PUT', `${E()}/secrets/K${i}`, { value: `v${i}` })).status, 200)
  })
  after(async () => {
    await stop()
    rmSync(work, { recursive: true, force: true })
    await drop?.()
  })

  test('create works while the server runs; restore is refused until it stops, then the audit log names the restore', async () => {
    const file = join(work, 'b1.cbk')
    const created = JSON.parse((await ok(['backup', 'create', '--out', file, '--json'], hostEnv())).stdout) as {
      manifest: { id: string }
    }
    assert.ok((await ok(['backup', 'verify', file], hostEnv())).stderr.includes('verifies'))
    const pub = (await request(server!.url, '', 'GET', '/v1/audit/public-key')).body.publicKey as string
    await ok(['backup', 'verify', file, '--public-key', pub], childEnv({}))
    const listed = JSON.parse((await ok(['backup', 'list', '--json'], hostEnv())).stdout)
    assert.deepEqual(listed.backups, [], 'an --out file is not in the backup directory')

    // Newer writes, and a client that verifies the newer log (and remembers it).
    for (let i = 0; i < 3; i++)
      assert.equal((await request(server!.url, token, 'PUT', `${E()}/secrets/N${i}`, { value: `n${i}` })).status, 200)
    await ok(['audit', 'verify'], clientEnv())
    const sawNewer = readFileSync(stateFile)

    const refused = await run(['backup', 'restore', file], hostEnv())
    assert.notEqual(refused.status, 0)
    assert.match(refused.stderr, /ERR_BACKUP_SERVER_RUNNING/)
    assert.equal((await request(server!.url, token, 'GET', `${E()}/secrets/N0`)).status, 200, 'nothing changed')

    await stop()
    const restored = await ok(['backup', 'restore', file], hostEnv())
    assert.match(restored.stderr, /Restored backup/)
    await start()
    assert.equal((await request(server!.url, token, 'GET', `${E()}/secrets/N0`)).status, 404, 'the newer secret is gone')
    assert.equal((await request(server!.url, token, 'GET', `${E()}/secrets/K0?reveal=true`)).status, 200)

    const v = await ok(['audit', 'verify'], clientEnv())
    assert.match(v.stdout + v.stderr, new RegExp(`restored from backup ${created.manifest.id}`, 'i'))
    const again = await ok(['audit', 'verify'], clientEnv())
    assert.match(again.stdout + again.stderr, /extends the checkpoint/, 'the saved state moved to the restored log')

    // The same shortened log without the restore record is a rewritten history: exit 2.
    await stop()
    const record = await restoreRow(null)
    assert.ok(record)
    await start()
    writeFileSync(stateFile, sawNewer) // the client's memory of the newer log
    const rewritten = await run(['audit', 'verify'], clientEnv())
    assert.equal(rewritten.status, 2, rewritten.stderr)
    assert.match(rewritten.stderr, /ERR_AUDIT_CHAIN_BROKEN/)

    // A record that does not cover what the client saw (same size, another root) does not help either.
    await stop()
    await restoreRow(record)
    await start()
    const state = JSON.parse(sawNewer.toString('utf8')) as Record<string, { rootHash: string }>
    for (const k of Object.keys(state)) state[k]!.rootHash = Buffer.alloc(32, 7).toString('base64')
    writeFileSync(stateFile, JSON.stringify(state))
    const forged = await run(['audit', 'verify'], clientEnv())
    assert.equal(forged.status, 2, forged.stderr)

    // With the record back and the true memory, the restore is recognised again.
    writeFileSync(stateFile, sawNewer)
    await ok(['audit', 'verify'], clientEnv())
  })
})
