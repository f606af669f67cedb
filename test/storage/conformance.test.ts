// Runs the storage conformance suite on every engine: SQLite (a temporary file) and
// PostgreSQL (a throw-away database). PostgreSQL missing is a loud skip, or a failure under
// COFFER_REQUIRE_PG=1.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore, type Store } from '../../src/storage/database.js'
import { createTestDatabase } from '../helpers/pg.js'
import { describeEachEngine } from '../helpers/engines.js'
import { exerciseStorage, type OpenedStore } from './exercise-storage.js'

async function openSqlite(): Promise<OpenedStore> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-storage-'))
  const path = join(dir, 'coffer.db')
  const extra: Store[] = []
  const store = openStore({ engine: 'sqlite', path })
  return {
    store,
    connect() {
      const s = openStore({ engine: 'sqlite', path })
      extra.push(s)
      return s
    },
    async close() {
      for (const s of extra) await s.close()
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function openPostgres(): Promise<OpenedStore> {
  const db = await createTestDatabase()
  const extra: Store[] = []
  const store = openStore({ engine: 'postgres', url: db.url })
  return {
    store,
    connect() {
      const s = openStore({ engine: 'postgres', url: db.url })
      extra.push(s)
      return s
    },
    async close() {
      for (const s of extra) await s.close()
      await store.close()
      await db.drop()
    },
  }
}

describeEachEngine((engine) => exerciseStorage(engine === 'sqlite' ? openSqlite : openPostgres, { multiNode: engine === 'postgres' }))
