// Migration 9 rebuilds SQLite's audit_nodes as a WITHOUT ROWID table: every node survives,
// and the append-only triggers come back exactly as they were.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { sql } from 'kysely'
import { openStore } from '../../src/storage/database.js'
import { MIGRATIONS } from '../../src/storage/migrations.js'
import { currentSchemaVersion, migrate } from '../../src/storage/migrator.js'

test('audit_nodes keeps every node and its triggers when rebuilt without rowid', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-migrate-'))
  const store = openStore({ engine: 'sqlite', path: join(dir, 'coffer.db') })
  try {
    await migrate(
      store,
      MIGRATIONS.filter((m) => m.version <= 8),
    )
    assert.equal(await currentSchemaVersion(store), 8)
    const triggersBefore = (
      await sql<{
        name: string
        sql: string
      }>`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_nodes' ORDER BY name`.execute(store.db)
    ).rows
    assert.ok(triggersBefore.length >= 2)
    const ws = randomUUID()
    const now = new Date().toISOString()
    await store.db
      .insertInto('workspaces')
      .values({ id: ws, name: 'W', slug: `w-${ws.slice(0, 8)}`, fingerprint_key: randomBytes(40), root_key_id: 'test', created_at: now })
      .execute()
    const nodes = Array.from({ length: 300 }, (_, i) => ({ workspace_id: ws, level: i % 3, idx: i, hash: randomBytes(32) }))
    await store.db.insertInto('audit_nodes').values(nodes).execute()

    await migrate(store)
    const table = (
      await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_nodes'`.execute(store.db)
    ).rows[0]!
    assert.match(table.sql, /WITHOUT ROWID/)
    const after = await store.db.selectFrom('audit_nodes').selectAll().orderBy('idx').execute()
    assert.deepEqual(
      after.map((n) => [n.workspace_id, n.level, n.idx, Buffer.from(n.hash).toString('hex')]),
      nodes.map((n) => [n.workspace_id, n.level, n.idx, n.hash.toString('hex')]),
    )
    const triggersAfter = (
      await sql<{
        name: string
        sql: string
      }>`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_nodes' ORDER BY name`.execute(store.db)
    ).rows
    assert.deepEqual(triggersAfter, triggersBefore)
    await assert.rejects(
      store.db
        .updateTable('audit_nodes')
        .set({ hash: randomBytes(32) })
        .where('idx', '=', 1)
        .execute(),
      /append-only/,
    )
    await assert.rejects(store.db.deleteFrom('audit_nodes').where('idx', '=', 1).execute(), /append-only/)
    await assert.rejects(store.db.insertInto('audit_nodes').values(nodes[0]!).execute(), /UNIQUE|PRIMARY/)
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
})
