// Nodes started together on an empty database all come up, and exactly one creates the first
// workspace and prints its Owner token (one transaction under an advisory lock). Repeated, so
// that a race has its chances.
import { type ChildProcess, spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pg from 'pg'
import { BIN, childEnv, ensureBuilt, stopChild, waitListening } from '../helpers/child-server.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

const NODES = 3
const ROUNDS = 3

describePostgres('nodes started together on an empty database', () => {
  test(`${NODES} nodes at once, ${ROUNDS} times: all come up, exactly one Owner token, one workspace`, { timeout: 120_000 }, async () => {
    ensureBuilt()
    for (let round = 0; round < ROUNDS; round++) {
      const db = await createTestDatabase()
      const work = mkdtempSync(join(tmpdir(), 'coffer-together-'))
      const env = childEnv({
        DATABASE_URL: db.url,
        COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
        COFFER_LOG_LEVEL: 'warn',
        COFFER_CHECKPOINT_INTERVAL: '0',
        COFFER_AUDIT_VERIFY_INTERVAL: '0',
      })
      const children: ChildProcess[] = []
      const out: string[] = []
      try {
        for (let i = 0; i < NODES; i++) {
          const c = spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, `node${i}`), '--host', '127.0.0.1', '--port', '0'], {
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
          })
          out.push('')
          const keep = (d: Buffer) => {
            out[i] += d.toString()
          }
          c.stdout?.on('data', keep)
          c.stderr?.on('data', keep)
          children.push(c)
        }
        await Promise.all(children.map((c, i) => waitListening(c, `round ${round + 1} node ${i + 1}`)))
        // The token follows the "listening" line; give the streams a moment to deliver it.
        await new Promise((r) => setTimeout(r, 300))
        const printed = out.filter((o) => /Owner token/.test(o)).length
        assert.equal(printed, 1, `round ${round + 1}: exactly one node prints an Owner token`)
        const c = new pg.Client({ connectionString: db.url })
        await c.connect()
        const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM workspaces')
        await c.end()
        assert.equal(Number(rows[0]!.n), 1, `round ${round + 1}: one workspace`)
        for (const child of children) assert.equal(child.exitCode, null, 'every node still runs')
      } finally {
        await Promise.all(children.map((c) => stopChild(c)))
        await db.drop()
        rmSync(work, { recursive: true, force: true })
      }
    }
  })
})
