// The audit thread (see audit-thread-client.ts): on its own connection to the SQLite file, it
// queues the entries the main thread hands it — one group-committed unit per message,
// answered once its COMMIT has returned — and runs this node's sequencer. Its metrics and
// sequencer events are sent to the main thread, which exports and logs them.
import { parentPort, workerData } from 'node:worker_threads'
import { systemClock } from '../ops/clock.js'
import { rowLockedPartition } from '../storage/commit-partition.js'
import { openStore } from '../storage/database.js'
import { GroupCommitter } from '../storage/group-commit.js'
import type { AuditThreadInit, AuditThreadMessage, AuditThreadRequest, ThreadError } from './audit-thread-client.js'
import { AuditLog } from './audit-log.js'
import { AuditSequencer, type SequencerDeps } from './sequencer.js'

// While entries keep coming, the next look is this soon: small batches, short waits on the write lock.
const BUSY_TICK_MS = 20

const port = parentPort
if (port) {
  const init = workerData as AuditThreadInit
  // Metrics go to the main thread once per turn of this thread's event loop, not per entry —
  // and always ahead of any other message, so that an answer is never seen before its counts.
  let metrics: Extract<AuditThreadMessage, { t: 'metrics' }> | undefined
  const flush = () => {
    if (!metrics) return
    const m = metrics
    metrics = undefined
    port.postMessage(m)
  }
  const send = (m: AuditThreadMessage) => {
    flush()
    port.postMessage(m)
  }
  const batch = () => {
    if (!metrics) {
      metrics = { t: 'metrics' }
      setImmediate(flush)
    }
    return metrics
  }
  const store = openStore({ engine: 'sqlite', path: init.path }, { readerConnection: false })
  const committer = new GroupCommitter(store.db)
  // @NOTE entries arrive made: the main thread resolved their details (fingerprints) already.
  const audit = new AuditLog(
    'sqlite',
    async () => {
      throw new Error('the audit thread queues entries made by the main thread')
    },
    systemClock,
  )

  const sequencer = new AuditSequencer({
    store,
    committer,
    audit,
    clock: systemClock,
    mergeDelayMs: init.mergeDelayMs,
    leaseMs: init.leaseMs,
    node: init.node,
    busyTickMs: BUSY_TICK_MS,
    metrics: {
      auditPendingEntries: {
        set: (v: number) => {
          batch().pending = v
        },
      },
      auditMergeLag: {
        set: (v: number) => {
          batch().lagSeconds = v
        },
      },
      auditIntegrated: {
        inc: (by = 1) => {
          const m = batch()
          m.integrated = (m.integrated ?? 0) + by
        },
      },
      auditMergeDelay: {
        observe: (v: number) => {
          const m = batch()
          m.delays ??= []
          m.delays.push(v)
        },
      },
      auditSequencerFailures: {
        inc: (_by = 1, labels: { reason?: string } = {}) => {
          const m = batch()
          m.failures ??= []
          m.failures.push(labels.reason ?? 'error')
        },
      },
    } as unknown as NonNullable<SequencerDeps['metrics']>,
  })
  sequencer.onError((err, workspaceId) => send({ t: 'sequencerError', workspaceId, error: toThread(err) }))
  sequencer.onIntegrated((workspaceId) => send({ t: 'integrated', workspaceId }))

  const handle = async (req: AuditThreadRequest): Promise<number | boolean | undefined> => {
    switch (req.t) {
      case 'queue': {
        const ws = req.records[0]?.workspaceId
        if (ws === undefined || req.records.some((r) => r.workspaceId !== ws)) throw new Error('one workspace per queued batch')
        await committer.run((tx) => audit.queue(tx, req.records), rowLockedPartition(ws))
        return undefined
      }
      case 'catchUp':
        return sequencer.catchUp(req.workspaceId, req.timeoutMs)
      case 'pass':
        return sequencer.pass()
      case 'start':
        sequencer.start()
        return undefined
      case 'stop':
        await sequencer.stop()
        return undefined
      case 'close':
        await sequencer.stop()
        await committer.close()
        await store.close()
        return undefined
    }
  }
  port.on('message', (req: AuditThreadRequest) => {
    handle(req).then(
      (value) => send(value === undefined ? { t: 'done', id: req.id } : { t: 'done', id: req.id, value }),
      (err: unknown) => send({ t: 'failed', id: req.id, error: toThread(err) }),
    )
  })
}

/** What crosses to the main thread of an error: its name, message and code (the mappers read these), and its cause's code. */
function toThread(err: unknown): ThreadError {
  const e = err as { name?: unknown; message?: unknown; code?: unknown; cause?: { code?: unknown } }
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(code === undefined ? {} : { code }),
  }
}
