import { randomUUID } from 'node:crypto'
import type { Worker } from 'node:worker_threads'
import { AuditUnavailableError } from '../errors.js'
import type { Metrics } from '../ops/metrics.js'
import { startWorkerThread } from '../worker-thread.js'
import type { QueuedRecord } from './audit-log.js'
import { type Sequencing, sequencerTickMs } from './sequencer.js'

// On SQLite, the audit work that needs no request of its own runs on a thread of its own with
// its own connection to the database file: queuing the entries of reads (the read's answer
// waits for their COMMIT, as before) and the sequencer. Measured on the read path, that work
// was a third of the event loop's time (the COMMIT's fsync and each sequencer batch block the
// thread that runs them). The thread is another writer of the same file, as a second node is
// on PostgreSQL: the sequencer's lease and SQLite's write lock keep them apart exactly as
// between nodes. Writes keep their entries in their own transaction on the main connection.

/** What the thread is started with. */
export interface AuditThreadInit {
  /** The SQLite database file. */
  path: string
  /** This node's name in sequencer leases. */
  node: string
  mergeDelayMs: number
  leaseMs: number
}

/** Main thread → audit thread. */
export type AuditThreadRequest =
  | { t: 'queue'; id: number; records: QueuedRecord[] }
  | { t: 'catchUp'; id: number; workspaceId: string; timeoutMs?: number }
  | { t: 'pass'; id: number }
  | { t: 'start'; id: number }
  | { t: 'stop'; id: number }
  | { t: 'close'; id: number }

/** An error as it crosses threads: what the error mappers read (code, message, name). */
export interface ThreadError {
  name: string
  message: string
  code?: string
}

/** Audit thread → main thread. */
export type AuditThreadMessage =
  | { t: 'done'; id: number; value?: number | boolean }
  | { t: 'failed'; id: number; error: ThreadError }
  | { t: 'sequencerError'; workspaceId: string; error: ThreadError }
  | { t: 'integrated'; workspaceId: string }
  | { t: 'metrics'; pending?: number; lagSeconds?: number; integrated?: number; delays?: number[]; failures?: string[] }

/** An error from the thread, with the name, message and code the error mappers look at. */
function fromThread(e: ThreadError): Error {
  return Object.assign(new Error(e.message), { name: e.name }, e.code === undefined ? {} : { code: e.code })
}

type SequencerMetrics = Pick<
  Metrics,
  'auditPendingEntries' | 'auditMergeLag' | 'auditIntegrated' | 'auditSequencerFailures' | 'auditMergeDelay'
>

/**
 * The main thread's side of the audit thread: queues prepared entries through it and stands
 * in for the sequencer it runs (Sequencing). The thread starts with its first use — a read's
 * entries, an audit reader's catch-up, or (once sequencing is started) an entry found queued
 * by a look every `pollMs` — so an idle server holds no thread, and again after it died. A
 * request waiting on a thread that dies fails closed.
 */
export class AuditThreadClient implements Sequencing {
  readonly node = randomUUID()
  readonly #init: AuditThreadInit
  readonly #metrics: SequencerMetrics | undefined
  #worker: Worker | undefined
  #nextId = 0
  readonly #pending = new Map<number, { resolve: (v: number | boolean | undefined) => void; reject: (e: unknown) => void }>()
  #sequencing = false
  #closed = false
  readonly #hasQueued: () => Promise<boolean>
  readonly #pollMs: number
  #poll: NodeJS.Timeout | undefined
  #onError: ((err: unknown, workspaceId: string) => void) | undefined
  #onIntegrated: ((workspaceId: string) => void) | undefined

  constructor(options: {
    path: string
    mergeDelayMs: number
    leaseMs: number
    /** Whether any entry waits in the queue (a cheap read on this thread's connection). */
    hasQueued: () => Promise<boolean>
    /** How often to look while no thread runs (default: the sequencer's tick). */
    pollMs?: number
    metrics?: SequencerMetrics
  }) {
    this.#init = { path: options.path, node: this.node, mergeDelayMs: options.mergeDelayMs, leaseMs: options.leaseMs }
    this.#metrics = options.metrics
    this.#hasQueued = options.hasQueued
    this.#pollMs = options.pollMs ?? sequencerTickMs(options.mergeDelayMs)
  }

  /** Queues `records` on the thread's connection; resolves once their COMMIT has returned. */
  async queue(records: QueuedRecord[]): Promise<void> {
    if (records.length === 0) return
    await this.#call({ t: 'queue', records })
  }

  start(): void {
    this.#sequencing = true
    if (this.#worker) this.#startSequencer(this.#worker)
    else this.#lookSoon()
  }

  async stop(): Promise<void> {
    this.#sequencing = false
    clearTimeout(this.#poll)
    if (this.#worker) await this.#call({ t: 'stop' })
  }

  #startSequencer(w: Worker): void {
    this.#send(w, { t: 'start' }).catch((err: unknown) => this.#onError?.(err, ''))
  }

  /** While sequencing without a thread: looks for queued entries (a write's, another process's) and starts the thread for them. */
  #lookSoon(): void {
    clearTimeout(this.#poll)
    this.#poll = setTimeout(async () => {
      if (!this.#sequencing || this.#worker || this.#closed) return
      let queued = false
      try {
        queued = await this.#hasQueued()
      } catch (err) {
        this.#onError?.(err, '')
      }
      if (queued) this.#thread()
      else this.#lookSoon()
    }, this.#pollMs)
    this.#poll.unref()
  }

  async pass(): Promise<number> {
    return Number(await this.#call({ t: 'pass' }))
  }

  async catchUp(workspaceId: string, timeoutMs?: number): Promise<boolean> {
    try {
      return Boolean(await this.#call({ t: 'catchUp', workspaceId, ...(timeoutMs === undefined ? {} : { timeoutMs }) }))
    } catch (err) {
      // As AuditSequencer.catchUp: never throws; the reader sees what is still pending.
      this.#onError?.(err, workspaceId)
      return false
    }
  }

  onError(listener: (err: unknown, workspaceId: string) => void): void {
    this.#onError = listener
  }

  onIntegrated(listener: (workspaceId: string) => void): void {
    this.#onIntegrated = listener
  }

  /** Stops the sequencer, lets queued work finish, closes the thread's connection and ends the thread. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#poll)
    const w = this.#worker
    if (!w) return
    await this.#send(w, { t: 'close' }).catch(() => undefined)
    this.#worker = undefined
    await w.terminate()
  }

  #call(req: DistributiveOmit<AuditThreadRequest, 'id'>): Promise<number | boolean | undefined> {
    if (this.#closed) return Promise.reject(new AuditUnavailableError())
    return this.#send(this.#thread(), req)
  }

  #send(w: Worker, req: DistributiveOmit<AuditThreadRequest, 'id'>): Promise<number | boolean | undefined> {
    const id = ++this.#nextId
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      w.postMessage({ ...req, id })
    })
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker
    const w = startWorkerThread('audit-thread', import.meta.url, this.#init)
    // The thread must not keep the process alive: close() ends it.
    w.unref()
    w.on('message', (m: AuditThreadMessage) => this.#receive(m))
    const died = (err: unknown) => {
      if (this.#worker !== w) return
      this.#worker = undefined
      const failure = new AuditUnavailableError({ cause: err })
      for (const p of this.#pending.values()) p.reject(failure)
      this.#pending.clear()
      this.#onError?.(err, '')
      // A sequencing node goes on sequencing: the next thread starts its loop again.
      if (this.#sequencing && !this.#closed) this.start()
    }
    w.on('error', died)
    w.on('exit', (code) => died(new Error(`the audit thread exited (${code})`)))
    this.#worker = w
    if (this.#sequencing) this.#startSequencer(w)
    return w
  }

  #receive(m: AuditThreadMessage): void {
    switch (m.t) {
      case 'done':
      case 'failed': {
        const p = this.#pending.get(m.id)
        this.#pending.delete(m.id)
        if (m.t === 'done') p?.resolve(m.value)
        else p?.reject(fromThread(m.error))
        return
      }
      case 'sequencerError':
        this.#onError?.(fromThread(m.error), m.workspaceId)
        return
      case 'integrated':
        this.#onIntegrated?.(m.workspaceId)
        return
      case 'metrics': {
        const x = this.#metrics
        if (!x) return
        if (m.pending !== undefined) x.auditPendingEntries.set(m.pending)
        if (m.lagSeconds !== undefined) x.auditMergeLag.set(m.lagSeconds)
        if (m.integrated) x.auditIntegrated.inc(m.integrated)
        for (const d of m.delays ?? []) x.auditMergeDelay.observe(d)
        for (const reason of m.failures ?? []) x.auditSequencerFailures.inc(1, { reason })
        return
      }
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
