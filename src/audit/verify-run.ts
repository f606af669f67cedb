// The part of a verification thread that does not care where rows come from: verify one run
// of entries from pages of rows, and answer the pool's tasks (see verify-workers.ts). The
// threads' entry files (verify-worker.ts for the database, verify-file-worker.ts for export
// files) only say how to read rows.
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { ChainVerifier } from './verify.js'
import type { RunResult, RunTask } from './verify-workers.js'

/** Rows per page of an export file or a SQLite read (small, so that rows die young). */
export const PAGE = 1024

/**
 * One entry as a thread reads it: its seq, its canonical text (null when it cannot be
 * serialised) and both stored hashes as one string of 128 lowercase hex digits (null unless
 * each is a 32-byte value).
 */
export type Row = [seq: number | string, text: string | null, hashes: string | null]

/** The pages of rows of a task's run, in seq order. */
export type RowSource = (task: RunTask) => AsyncIterable<Row[]>

/**
 * Verifies one run: every entry fromSeq … toSeq there, in order, matching its stored hash.
 * `rowsOf` is called only for a non-empty run, so an empty one (VerifyWorkers.ready) reads
 * nothing.
 */
export async function verifyRun(t: RunTask, rowsOf: RowSource): Promise<RunResult> {
  // An empty run (VerifyWorkers.ready) only shows the thread is up.
  if (t.toSeq < t.fromSeq) return { id: t.id, ok: true, firstPrev: null, lastHash: null, peaks: [] }
  let v: ChainVerifier | null = null
  let firstPrev = ''
  let count = 0
  let ok = true
  for await (const rows of rowsOf(t)) {
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

/**
 * On a worker thread: answers each task the pool posts with its RunResult, at the lowest CPU
 * priority when the pool runs in the background. A run that cannot be read answers
 * `ok: false` with the error's message (the caller then verifies on its own thread).
 */
export function serveVerifyRuns(rowsOf: RowSource): void {
  const port = parentPort
  if (!port) return
  if (process.platform === 'linux' && (workerData as { background?: boolean } | undefined)?.background) {
    try {
      setPriority(19)
    } catch {
      /* not permitted: run at normal priority */
    }
  }
  port.on('message', (t: RunTask) => {
    verifyRun(t, rowsOf).then(
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
