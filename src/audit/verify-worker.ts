// Worker thread of VerifyWorkers: verifies one run of a workspace's audit log, read through
// this thread's own read-only connection (see verify-workers.ts).
import { closeSync, openSync, readSync } from 'node:fs'
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { SCOPE_SETTING } from '../storage/tenant-scope.js'
import type { ExportedEntry } from './offline.js'
import { entryText, entryTextSql } from './entry.js'
import { ChainVerifier } from './verify.js'
import type { RunResult, RunTask, VerifySource } from './verify-workers.js'

// Each row comes as [seq, canonical text, hashes]: the database builds the entry's canonical
// text (entryTextSql), and both stored hashes come as one string of 128 lowercase hex digits
// (a string costs a third of two Buffers), or NULL unless each is a 32-byte blob.
const SQLITE_HASHES =
  "CASE WHEN typeof(prev_hash) = 'blob' AND length(prev_hash) = 32 AND typeof(hash) = 'blob' AND length(hash) = 32 THEN lower(hex(prev_hash || hash)) END"
const POSTGRES_HASHES = "CASE WHEN octet_length(prev_hash) = 32 AND octet_length(hash) = 32 THEN encode(prev_hash || hash, 'hex') END"
// Rows per read (see Reader).
const PAGE = 1024
const PG_PAGE = 2048

type Row = [seq: number | string, text: string | null, hashes: string | null]

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

/**
 * The entries on lines byteStart … byteEnd of an export file, parsed a page at a time into
 * rows with their canonical text (entryText of the entry as parsed, as verifyExport computes
 * it). An entry of another workspace, or whose hashes are not strings, stops the run
 * (verifyExport then names it).
 */
async function* exportFilePages(s: Extract<VerifySource, { engine: 'export-file' }>, workspaceId: string): AsyncIterable<Row[]> {
  const buf = Buffer.allocUnsafe(s.byteEnd - s.byteStart)
  const fd = openSync(s.path, 'r')
  try {
    let got = 0
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, s.byteStart + got)
      if (n === 0) throw new Error('the export file is shorter than it was')
      got += n
    }
  } finally {
    closeSync(fd)
  }
  const text = buf.toString('utf8')
  let page: Row[] = []
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\n', at)
    if (end === -1) end = text.length
    const line = text.charCodeAt(end - 1) === 44 /* , */ ? text.slice(at, end - 1) : text.slice(at, end)
    at = end + 1
    if (!line) continue
    const e = JSON.parse(line) as ExportedEntry
    if (e?.workspaceId !== workspaceId || typeof e.prevHash !== 'string' || typeof e.hash !== 'string')
      throw new Error('not an entry of this export')
    page.push([
      typeof e.seq === 'number' ? e.seq : Number.NaN,
      textOf(e),
      e.prevHash.length === 64 && e.hash.length === 64 ? e.prevHash + e.hash : null,
    ])
    if (page.length === PAGE) {
      yield page
      page = []
    }
  }
  if (page.length) yield page
}

/** entryText of a parsed entry; null when it cannot be serialised (a field missing, say). */
function textOf(e: ExportedEntry): string | null {
  try {
    return entryText(e)
  } catch {
    return null
  }
}

const readers = new Map<string, Reader>()
function readerFor(s: VerifySource, workspaceId: string): Reader {
  if (s.engine === 'export-file') {
    return { pages: () => exportFilePages(s, workspaceId) }
  }
  const key = s.engine === 'sqlite' ? `sqlite:${s.path}` : s.url
  let r = readers.get(key)
  if (!r) {
    r = s.engine === 'sqlite' ? sqliteReader(s.path) : postgresReader(s.url)
    readers.set(key, r)
  }
  return r
}

async function verifyRun(t: RunTask): Promise<RunResult> {
  // An empty run (VerifyWorkers.ready) only shows the thread is up.
  if (t.toSeq < t.fromSeq) return { id: t.id, ok: true, firstPrev: null, lastHash: null, peaks: [] }
  let v: ChainVerifier | null = null
  let firstPrev = ''
  let count = 0
  let ok = true
  for await (const rows of readerFor(t.source, t.workspaceId).pages(t.workspaceId, t.fromSeq, t.toSeq)) {
    for (const [seq, text, hashes] of rows) {
      // Hashes that are not two 32-byte values compare with nothing.
      const prevHash = hashes ? hashes.slice(0, 64) : ''
      if (!v) {
        firstPrev = prevHash
        v = new ChainVerifier({ treeSize: t.treeLeaves, start: { seq: t.fromSeq, prevHash } })
      }
      if (!v.pushText(Number(seq), text, prevHash, hashes ? hashes.slice(64) : '')) {
        ok = false
        break
      }
      count++
    }
    if (!ok) break
  }
  ok &&= count === t.toSeq - t.fromSeq + 1 && v !== null && v.treeLeaves === t.treeLeaves
  if (!ok || !v) return { id: t.id, ok: false, firstPrev: null, lastHash: null, peaks: [] }
  // A good run's first entry's stored previous hash is the hash it was verified after; its last
  // hash is the verifier's head, which equals the stored one.
  return {
    id: t.id,
    ok,
    firstPrev: new Uint8Array(Buffer.from(firstPrev, 'hex')),
    lastHash: new Uint8Array(Buffer.from(v.result().head, 'hex')),
    peaks: v.treePeaks().map((p) => ({ level: p.level, hash: p.hash })),
  }
}

const port = parentPort
if (port) {
  if (process.platform === 'linux' && (workerData as { background?: boolean } | undefined)?.background) {
    try {
      setPriority(19)
    } catch {
      /* not permitted: run at normal priority */
    }
  }
  port.on('message', (t: RunTask) => {
    verifyRun(t).then(
      (r) => port.postMessage(r),
      (err: unknown) =>
        port.postMessage({
          id: t.id,
          ok: false,
          firstPrev: null,
          lastHash: null,
          peaks: [],
          error: (err as Error).message,
        } satisfies RunResult),
    )
  })
}
