import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { startWorkerThread } from '../worker-thread.js'
import { GENESIS_HASH } from './entry.js'
import { CompactRange } from './merkle.js'
import { sameBytes } from './verify.js'

// Full verification of a long audit log on several threads. The stored chain makes every
// entry checkable on its own: hash_n = SHA-256(domain ‖ prev_hash_n ‖ bytes_n) needs only the
// entry's row, and prev_hash_n = hash_{n-1} links it to the row before. So the log is cut
// into runs of CHUNK entries, each run is verified by a worker thread that reads it through
// its own database connection, and the caller only checks that each run starts where the one
// before ended. Runs start at multiples of a power of two, so each worker also returns its
// run's share of the RFC 9162 tree as whole perfect subtrees, which the caller joins
// (CompactRange.pushSubtree) into the checkpoint's root.

/**
 * Where a worker reads the log: the server's own database settings, or the lines byteStart …
 * byteEnd of an export file (export-file.ts), one entry per line.
 */
export type VerifySource =
  | { engine: 'sqlite'; path: string }
  | { engine: 'postgres'; url: string }
  | { engine: 'export-file'; path: string; byteStart: number; byteEnd: number }

/** The database source of the server's own settings (a DatabaseConfig of src/ops/config.ts). */
export function verifySourceOf(
  db: { readonly engine: 'sqlite'; readonly path: string } | { readonly engine: 'postgres'; readonly url: string },
): Extract<VerifySource, { engine: 'sqlite' | 'postgres' }> {
  return db.engine === 'sqlite' ? { engine: 'sqlite', path: db.path } : { engine: 'postgres', url: db.url }
}

/** One run of entries to verify: seqs fromSeq … toSeq of one workspace. */
export interface RunTask {
  id: number
  source: VerifySource
  workspaceId: string
  fromSeq: number
  toSeq: number
  /** Leaves of the run (from its first) that belong to the checkpoint's tree. */
  treeLeaves: number
}

export interface RunResult {
  id: number
  /** Every entry fromSeq … toSeq was there, in order, and matched its stored hash. */
  ok: boolean
  /** The stored previous hash of the run's first entry, and the hash of its last. */
  firstPrev: Uint8Array | null
  lastHash: Uint8Array | null
  /** The run's first treeLeaves leaves as perfect subtrees, leftmost first. */
  peaks: Array<{ level: number; hash: Uint8Array }>
  /** The worker could not read the log (then the caller verifies on its own thread). */
  error?: string
}

/**
 * Joins runs verified in order: each must be good and start where the one before ended (the
 * first after the genesis hash). Returns the tree of their leaves and the last entry's hash,
 * or null.
 */
export function joinRuns(results: readonly RunResult[]): { range: CompactRange; last: Uint8Array } | null {
  const range = new CompactRange()
  let last: Uint8Array = GENESIS_HASH
  for (const r of results) {
    if (!r.ok || !r.firstPrev || !r.lastHash || !sameBytes(r.firstPrev, last)) return null
    for (const p of r.peaks) range.pushSubtree(p.level, p.hash)
    last = r.lastHash
  }
  return { range, last }
}

/**
 * A pool of verification threads, started on first use. Each thread keeps one read-only
 * connection per database. In a server (`background`) they run at the lowest CPU priority
 * (nice 19 on Linux: per thread), so a long verification never takes the CPU from requests;
 * the CLI, where someone waits for the answer, runs them at normal priority. With
 * `exportFilesOnly` the threads read export files only and load no database driver (the
 * CLI's offline `coffer audit verify --file`); a database task then answers `ok: false`.
 */
export class VerifyWorkers {
  readonly #size: number
  readonly #background: boolean
  readonly #entry: 'verify-worker' | 'verify-file-worker'
  #workers: Worker[] = []
  #seq = 0
  readonly #pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: unknown) => void }>()

  constructor(size = Math.max(1, Math.min(4, availableParallelism())), opts: { background?: boolean; exportFilesOnly?: boolean } = {}) {
    this.#size = size
    this.#background = opts.background ?? false
    this.#entry = opts.exportFilesOnly ? 'verify-file-worker' : 'verify-worker'
  }

  get size(): number {
    return this.#size
  }

  #start(): Worker[] {
    if (this.#workers.length) return this.#workers
    for (let i = 0; i < this.#size; i++) {
      const w = startWorkerThread(this.#entry, import.meta.url, { background: this.#background })
      w.unref()
      w.on('message', (r: RunResult) => {
        const p = this.#pending.get(r.id)
        this.#pending.delete(r.id)
        p?.resolve(r)
      })
      w.on('error', (err) => this.#failAll(err))
      w.on('exit', () => this.#failAll(new Error('a verification thread exited')))
      this.#workers.push(w)
    }
    return this.#workers
  }

  #failAll(err: unknown): void {
    for (const p of this.#pending.values()) p.reject(err)
    this.#pending.clear()
    const ws = this.#workers
    this.#workers = []
    for (const w of ws) void w.terminate()
  }

  /** Starts the threads and waits until each answers (a thread's first start loads its code). */
  async ready(): Promise<void> {
    await this.run(
      this.#start().map(() => ({ source: { engine: 'sqlite', path: '' }, workspaceId: '', fromSeq: 1, toSeq: 0, treeLeaves: 0 })),
    )
  }

  /** Runs every task, at most one per thread at a time; results in task order. */
  async run(tasks: Array<Omit<RunTask, 'id'>>): Promise<RunResult[]> {
    const workers = this.#start()
    const results: RunResult[] = new Array(tasks.length)
    let next = 0
    const loop = async (w: Worker) => {
      while (next < tasks.length) {
        const i = next++
        const id = ++this.#seq
        results[i] = await new Promise<RunResult>((resolve, reject) => {
          this.#pending.set(id, { resolve, reject })
          w.postMessage({ ...tasks[i]!, id } satisfies RunTask)
        })
      }
    }
    await Promise.all(workers.map(loop))
    return results
  }

  async close(): Promise<void> {
    const ws = this.#workers
    this.#workers = []
    await Promise.all(ws.map((w) => w.terminate()))
  }
}
