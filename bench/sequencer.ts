// How fast the audit sequencer integrates queued entries into a workspace's chain and Merkle
// tree, beside what the same work costs with no database (hashing and tree only), measured in
// the same run.
//
//   node --import tsx bench/sequencer.ts [--entries 200000] [--batch 2000] [--engines sqlite,postgres] [--random-ids]
//                                        [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--tmpdir DIR]
//
// For each engine: a fresh database (SQLite in a temp dir, WAL and synchronous=FULL as Coffer
// runs it; PostgreSQL a throw-away database), one workspace, --entries entries queued in
// audit_queue as requests queue them, then integrated by AuditLog.integrate batch after batch
// (one durable transaction each, as the sequencer runs them). Prints entries/s, the baseline
// (EntryHasher + CompactRange on the same records in memory) and the ratio; then verifies the
// chain. Target (issue 15): ≥ 20,000 entries/s on SQLite. Exits 1 if the chain does not verify.
import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { AuditLog } from '../src/audit/audit-log.js'
import { EntryHasher, GENESIS_HASH } from '../src/audit/entry.js'
import { newEntryId } from '../src/audit/entry-id.js'
import { CompactRange } from '../src/audit/merkle.js'
import { systemClock } from '../src/ops/clock.js'
import { openStore, type Store } from '../src/storage/database.js'
import type { AuditQueueTable } from '../src/storage/schema.js'
import { migrate } from '../src/storage/migrator.js'
import { args, installCleanup, makeTempDir, printTable, ratio, removeTempDir } from './lib/harness.js'

const A = args()
const ENTRIES = Number(A.get('entries') ?? 200_000)
const BATCH = Number(A.get('batch') ?? 2000)
const ENGINES = (A.get('engines') ?? 'sqlite,postgres').split(',') as Array<'sqlite' | 'postgres'>
const RANDOM_IDS = A.get('random-ids') === 'true'
const ADMIN_URL = A.get('database-url') ?? 'postgres://postgres@127.0.0.1:5432/postgres'
if (!(ENTRIES >= 1000 && ENTRIES <= 5_000_000 && BATCH >= 1 && BATCH <= 100_000))
  throw new Error('--entries in [1000, 5e6], --batch in [1, 1e5]')
installCleanup(600)

/** A queue row as requests insert it. */
type Row = Omit<AuditQueueTable, 'qid'>

function rowsFor(ws: string): Row[] {
  const now = Date.now()
  // As requests make them: UUIDv7 ids (src/audit/entry-id.ts) and the workspace's few actors.
  // --random-ids: v4 ids and a new actor per entry (each entry then dirties pages of both indexes
  // anywhere in them; this benchmark measured that until 2026-12-06).
  const actors = Array.from({ length: 25 }, () => randomUUID())
  return Array.from({ length: ENTRIES }, (_, i) => ({
    workspace_id: ws,
    id: RANDOM_IDS ? randomUUID() : newEntryId(now + i),
    time: new Date(now + i).toISOString(),
    actor_type: 'user',
    actor_id: RANDOM_IDS ? randomUUID() : actors[i % actors.length]!,
    actor_ip: '10.0.0.7',
    actor_ua: 'coffer-cli/0.1.0',
    request_id: randomUUID(),
    action: i % 4 === 0 ? 'secret.update' : 'secret.reveal',
    target_type: 'secret',
    target_id: randomUUID(),
    details:
      i % 4 === 0
        ? `{"after":"hmac-sha256:${randomBytes(32).toString('base64url')}","key":"KEY_${i % 100}","version":${i}}`
        : `{"key":"KEY_${i % 100}"}`,
  }))
}

/** The same hashing and tree work with no database: the floor under integration. */
function baseline(rows: Row[]): number {
  const hasher = new EntryHasher()
  const range = new CompactRange()
  let prev: Buffer = GENESIS_HASH
  const t = performance.now()
  rows.forEach((r, i) => {
    const { chain, leaf } = hasher.hash(
      {
        workspaceId: r.workspace_id,
        seq: i + 1,
        id: r.id,
        time: r.time,
        actor: { type: r.actor_type, id: r.actor_id, ip: r.actor_ip, userAgent: r.actor_ua },
        requestId: r.request_id,
        action: r.action,
        target: { type: r.target_type, id: r.target_id },
        details: r.details,
      },
      prev,
      true,
    )
    range.append(leaf!)
    prev = chain
  })
  return rows.length / ((performance.now() - t) / 1000)
}

async function runEngine(engine: 'sqlite' | 'postgres'): Promise<{ rate: number; batches: number; verified: boolean; base: number }> {
  const dir = makeTempDir('coffer-bench-seq-', A.get('tmpdir'))
  let store: Store | undefined
  let dropDb: (() => Promise<void>) | undefined
  try {
    if (engine === 'sqlite') store = openStore({ engine: 'sqlite', path: join(dir, 'coffer.db') })
    else {
      const name = `coffer_bench_seq_${randomBytes(4).toString('hex')}`
      const admin = new pg.Client({ connectionString: ADMIN_URL })
      await admin.connect()
      await admin.query(`CREATE DATABASE ${name}`)
      await admin.end()
      const url = new URL(ADMIN_URL)
      url.pathname = `/${name}`
      store = openStore({ engine: 'postgres', url: url.toString() })
      dropDb = async () => {
        const a = new pg.Client({ connectionString: ADMIN_URL })
        await a.connect()
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await a.end()
      }
    }
    await migrate(store)
    const ws = randomUUID()
    await store.db
      .insertInto('workspaces')
      .values({
        id: ws,
        slug: `b-${ws.slice(0, 8)}`,
        name: 'Bench',
        fingerprint_key: randomBytes(60),
        root_key_id: 'bench',
        created_at: new Date().toISOString(),
      })
      .execute()
    const audit = new AuditLog(store.engine, async () => randomBytes(32), systemClock)
    await audit.initWorkspace(store.db, ws)
    const rows = rowsFor(ws)
    process.stderr.write(`bench: ${engine}: queuing ${ENTRIES} entries\n`)
    for (let i = 0; i < rows.length; i += 2000) {
      const chunk = rows.slice(i, i + 2000)
      await store.db.transaction().execute(async (tx) => {
        for (let j = 0; j < chunk.length; j += 500)
          await tx
            .insertInto('audit_queue')
            .values(chunk.slice(j, j + 500))
            .execute()
      })
    }
    const base = baseline(rows)
    process.stderr.write(`bench: ${engine}: integrating in batches of ${BATCH}\n`)
    let batches = 0
    let done = 0
    const t = performance.now()
    for (;;) {
      const r = await store.db.transaction().execute((tx) => audit.integrate(tx, ws, { limit: BATCH }))
      batches++
      done += r!.count
      if (r!.count < BATCH) break
    }
    const rate = done / ((performance.now() - t) / 1000)
    if (done !== ENTRIES) throw new Error(`${engine}: integrated ${done} of ${ENTRIES}`)
    const v = await audit.verify(store.db, ws)
    return { rate, batches, verified: v.ok && v.checked === ENTRIES, base }
  } finally {
    await store?.close()
    if (dropDb) await dropDb()
    removeTempDir(dir)
  }
}

const out: Array<[string, number, number, string, number, string]> = []
let failed = false
for (const engine of ENGINES) {
  const r = await runEngine(engine)
  failed ||= !r.verified
  out.push([
    engine,
    Math.round(r.rate),
    Math.round(r.base),
    ratio(r.rate, r.base),
    r.batches,
    r.verified ? `yes (${ENTRIES} entries)` : 'NO',
  ])
}
printTable(
  `Audit sequencer: ${ENTRIES} queued entries integrated in batches of ${BATCH} (target on SQLite: ≥ 20,000 entries/s)`,
  ['engine', 'integrated entries/s', 'baseline: hashing + tree only, entries/s', 'ratio', 'transactions', 'chain verifies'],
  out,
)
if (failed) process.exit(1)
