import BetterSqlite3 from 'better-sqlite3'
import { closeSync, openSync, writeSync } from 'node:fs'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { SIGNER_META, VERIFIER_META } from '../audit/audit-tree.js'
import { unpackPeaks } from '../audit/tree-store.js'
import type { Store } from '../storage/database.js'
import type { Database, Executor } from '../storage/schema.js'
import { setScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { ManifestAuditHead } from './backup-file.js'

// Taking a consistent copy of the database, without stopping the servers that use it.
// SQLite: the online backup API into a file of its own (single-file, rollback journal).
// PostgreSQL: every row of every table of the schema, read in one REPEATABLE READ READ ONLY
// transaction in Coffer's system scope — so row-level security, which binds even the schema
// owner (FORCE), shows every workspace, and no BYPASSRLS or superuser role is needed.

/** What the manifest says about the copy, read from the copy itself. */
export interface SnapshotInfo {
  schemaVersion: number
  audit: ManifestAuditHead[]
  signer: { publicKey: string; wrappedKey: string }
}

/** The part name of each engine's data. */
export const DATA_PART = { sqlite: 'database.sqlite', postgres: 'rows.jsonl' } as const

/** Reads the schema version, every audit head and the checkpoint key rows from a snapshot. */
export async function readSnapshotInfo(db: Executor): Promise<SnapshotInfo> {
  const v = await db
    .selectFrom('coffer_schema')
    .select((eb) => eb.fn.max('version').as('v'))
    .executeTakeFirst()
  const heads = await db.selectFrom('audit_heads').select(['workspace_id', 'seq', 'hash', 'peaks']).orderBy('workspace_id').execute()
  const meta = await db.selectFrom('meta').select(['key', 'value']).where('key', 'in', [SIGNER_META, VERIFIER_META]).execute()
  const signer = meta.find((r) => r.key === SIGNER_META)
  const verifier = meta.find((r) => r.key === VERIFIER_META)
  if (!signer || !verifier) throw new Error('the database has no audit checkpoint key yet: start the server once first')
  return {
    schemaVersion: Number(v?.v ?? 0),
    audit: heads.map((h) => {
      const size = Number(h.seq)
      return {
        workspaceId: h.workspace_id,
        seq: size,
        hash: Buffer.from(h.hash).toString('hex'),
        treeSize: size,
        rootHash: Buffer.from(unpackPeaks(size, h.peaks).root()).toString('base64'),
      }
    }),
    signer: { publicKey: Buffer.from(verifier.value).toString('utf8'), wrappedKey: Buffer.from(signer.value).toString('base64') },
  }
}

/** A Kysely handle over a SQLite file (closed by `destroy`). */
export function sqliteHandle(path: string, options: BetterSqlite3.Options = {}): Kysely<Database> {
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path, options) }) })
}

/** SQLite: copies the live database at `dbPath` to `dest` with the online backup API. */
export async function snapshotSqlite(dbPath: string, dest: string): Promise<SnapshotInfo> {
  const src = new BetterSqlite3(dbPath, { fileMustExist: true })
  try {
    src.pragma('busy_timeout = 5000')
    await src.backup(dest)
  } finally {
    src.close()
  }
  // One self-contained file: no write-ahead log beside it.
  const copy = new BetterSqlite3(dest)
  copy.pragma('journal_mode = DELETE')
  copy.close()
  const db = sqliteHandle(dest, { readonly: true })
  try {
    return await readSnapshotInfo(db)
  } finally {
    await db.destroy()
  }
}

/** The base tables of the current schema, parents before the tables whose foreign keys name them. */
export async function tablesInInsertOrder(db: Executor): Promise<string[]> {
  const { rows: tables } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname`.execute(db)
  const { rows: fks } = await sql<{ child: string; parent: string }>`
    SELECT cc.relname AS child, pc.relname AS parent FROM pg_constraint k
    JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_class pc ON pc.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = cc.relnamespace
    WHERE k.contype = 'f' AND n.nspname = current_schema()`.execute(db)
  const names = tables.map((t) => t.name)
  const out: string[] = []
  const placed = new Set<string>()
  while (out.length < names.length) {
    const next = names.find(
      (t) => !placed.has(t) && fks.every((f) => f.child !== t || f.parent === t || placed.has(f.parent) || !names.includes(f.parent)),
    )
    if (!next) throw new Error('the foreign keys of the schema form a cycle')
    placed.add(next)
    out.push(next)
  }
  return out
}

/** The columns of a table in order, and which of them are bytea. */
export async function columnsOf(db: Executor, table: string): Promise<{ columns: string[]; bytea: string[] }> {
  const { rows } = await sql<{ name: string; type: string }>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
    WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${table})) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`.execute(db)
  return { columns: rows.map((r) => r.name), bytea: rows.filter((r) => r.type === 'bytea').map((r) => r.name) }
}

const PAGE = 2000

/**
 * PostgreSQL: writes every row of every table to `dest` as JSON lines — per table a header
 * `{"table","columns","bytea"}` then one array per row (bytea in base64), tables in
 * foreign-key order, and a closing `{"end":true,...}` — all read in one snapshot.
 */
export async function snapshotPostgres(store: Store, dest: string): Promise<SnapshotInfo & { rows: number }> {
  return store.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (tx) => {
      await setScope(tx, 'postgres', SYSTEM_SCOPE)
      const fd = openSync(dest, 'w', 0o600)
      let total = 0
      try {
        const tables = await tablesInInsertOrder(tx)
        for (const table of tables) {
          const { columns, bytea } = await columnsOf(tx, table)
          writeSync(fd, `${JSON.stringify({ table, columns, bytea })}\n`)
          const isBytea = columns.map((c) => bytea.includes(c))
          let after = '(0,0)'
          for (;;) {
            const { rows } = await sql<Record<string, unknown>>`
              SELECT ctid::text AS "__ctid", ${sql.join(columns.map((c) => sql.id(c)))} FROM ${sql.id(table)}
              WHERE ctid > ${after}::tid ORDER BY ctid LIMIT ${PAGE}`.execute(tx)
            if (!rows.length) break
            const lines = rows.map((r) =>
              JSON.stringify(
                columns.map((c, i) => {
                  const v = r[c]
                  return v !== null && isBytea[i] ? Buffer.from(v as Uint8Array).toString('base64') : v
                }),
              ),
            )
            writeSync(fd, `${lines.join('\n')}\n`)
            total += rows.length
            after = rows[rows.length - 1]!.__ctid as string
            if (rows.length < PAGE) break
          }
        }
        writeSync(fd, `${JSON.stringify({ end: true, tables: tables.length, rows: total })}\n`)
      } finally {
        closeSync(fd)
      }
      return { ...(await readSnapshotInfo(tx)), rows: total }
    })
}
