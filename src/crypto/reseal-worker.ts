// Worker thread of ResealWorkers: reseals one packed batch at a time (resealBatch: each item
// opened with the exact old key version its row names, sealed under the new key with the same
// binding). Plaintexts and keys never leave this thread except as new ciphertexts; plaintexts
// are zeroed after use, the batch's keys once it is done.
import { setPriority } from 'node:os'
import { parentPort } from 'node:worker_threads'
import type { DataKey } from './envelope.js'
import { ResealItemError, resealBatch } from './reseal-batch.js'
import type { ResealRequest, ResealResponse } from './reseal-workers.js'

const KEY_LENGTH = 32

const port = parentPort
if (port) {
  // @NOTE on Linux a nice value is per thread: the reseal's AES work yields the CPU to the
  // threads serving requests. Elsewhere this may fail or apply to the process; then it is skipped.
  if (process.platform === 'linux') {
    try {
      setPriority(19)
    } catch {
      /* not permitted: run at normal priority */
    }
  }
  port.on('message', (req: ResealRequest) => {
    const keyBytes = Buffer.from(req.keys.buffer, req.keys.byteOffset, req.keys.byteLength)
    let res: ResealResponse
    try {
      const keyAt = (i: number): Buffer => keyBytes.subarray(i * KEY_LENGTH, (i + 1) * KEY_LENGTH)
      const oldKeys = new Map<number, DataKey>(req.oldKeys.map((k, i) => [k.version, { id: k.id, version: k.version, key: keyAt(i) }]))
      const next: DataKey = { id: req.next.id, version: req.next.version, key: keyAt(req.oldKeys.length) }
      const out = new Uint8Array(req.batch.cts.length)
      resealBatch(req.batch, oldKeys, next, out)
      res = { id: req.id, out }
    } catch (err) {
      res =
        err instanceof ResealItemError
          ? { id: req.id, failed: err.index }
          : { id: req.id, error: err instanceof Error ? err.message : 'failed' }
    } finally {
      keyBytes.fill(0)
    }
    port.postMessage(res, 'out' in res ? [res.out.buffer as ArrayBuffer] : [])
  })
}
