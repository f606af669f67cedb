// Worker thread of VerifyWorkers: verifies one run of a workspace's audit log, read through
// this thread's own read-only connection (see verify-workers.ts), or of an export file.
// A pool made with `exportFilesOnly` starts verify-file-worker.ts instead, which loads no
// database driver.
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { SCOPE_SETTING } from '../storage/tenant-scope.js'
import { entryTextSql } from './entry.js'
import { exportFileRows } from './export-file-rows.js'
import { PAGE, type Row, serveVerifyRuns } from './verify-run.js'
import type { VerifySource } from './verify-workers.js'

// Each row comes as [seq, canonical text, hashes]: the database builds the entry's canonical
// text (entryTextSql), and both stored hashes come as one string of 128 lowercase hex digits
// (a string costs a third of two Buffers), or NULL unless each is a 32-byte blob.
const SQLITE_HASHES =
  "CASE WHEN typeof(prev_hash) = 'blob' AND length(prev_hash) = 32 AND typeof(hash) = 'blob' AND length(hash) = 32 THEN lower(hex(prev_hash || hash)) END"
const POSTGRES_HASHES = "CASE WHEN octet_length(prev_hash) = 32 AND octet_length(hash) = 32 THEN encode(prev_hash || hash, 'hex') END"
// Rows per PostgreSQL read (SQLite reads PAGE rows; see Reader).
const PG_PAGE = 2048

/**
 * Reads seqs from … to of a workspace in order, a page of rows at a time. Pages are small so
 * that rows die young: whole runs kept alive were promoted out of the young generation, and
 * garbage collection then cost as much as the hashing.
 */
interface Reader {
  pages(workspaceId: string, from: number, to: number): AsyncIterable<Row[]>
}

function sqliteReader(path: string): Reader {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  const stmt = db
    .prepare(
      `SELECT seq, ${entryTextSql('sqlite')}, ${SQLITE_HASHES} FROM audit_entries WHERE workspace_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ${PAGE}`,
    )
    .raw(true)
  return {
    async *pages(ws, from, to) {
      for (let after = from - 1; ; ) {
        const rows = stmt.all(ws, after, to) as Row[]
        if (rows.length) yield rows
        if (rows.length < PAGE) return
        after = Number(rows[rows.length - 1]![0])
      }
    },
  }
}

function postgresReader(url: string): Reader {
  const client = new pg.Client({ connectionString: url })
  const connected = client.connect()
  client.on('error', () => {})
  return {
    async *pages(ws, from, to) {
      await connected
      // One read-only transaction, scoped to the workspace (row-level security).
      await client.query('BEGIN READ ONLY')
      try {
        await client.query('SELECT set_config($1, $2, true)', [SCOPE_SETTING, ws])
        // Windows of seqs, each asked for before the one before it is verified, so this
        // server's backend builds the next page while the thread hashes this one. (A missing,
        // repeated or extra seq in a window is the verifier's to find, as with any read.)
        const window = (a: number) => {
          const q = client.query<Row>({
            text: `SELECT seq, ${entryTextSql('postgres')}, ${POSTGRES_HASHES} FROM audit_entries WHERE workspace_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq`,
            values: [ws, a, Math.min(to, a + PG_PAGE - 1)],
            rowMode: 'array',
          })
          q.catch(() => {}) // awaited below; a run that stops early leaves it to the COMMIT
          return q
        }
        let next = window(from)
        for (let a = from; a <= to; a += PG_PAGE) {
          const r = await next
          if (a + PG_PAGE <= to) next = window(a + PG_PAGE)
          if (r.rows.length) yield r.rows
        }
      } finally {
        await client.query('COMMIT')
      }
    },
  }
}

const readers = new Map<string, Reader>()
function readerFor(s: Exclude<VerifySource, { engine: 'export-file' }>): Reader {
  const key = s.engine === 'sqlite' ? `sqlite:${s.path}` : s.url
  let r = readers.get(key)
  if (!r) {
    r = s.engine === 'sqlite' ? sqliteReader(s.path) : postgresReader(s.url)
    readers.set(key, r)
  }
  return r
}

serveVerifyRuns((t) =>
  t.source.engine === 'export-file'
    ? exportFileRows(t.source, t.workspaceId)
    : readerFor(t.source).pages(t.workspaceId, t.fromSeq, t.toSeq),
)
