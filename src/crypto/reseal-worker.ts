// Worker thread of ResealWorkers: opens each ciphertext with the exact old key version its
// row names and seals the plaintext under the new key with the same binding. Plaintexts and
// keys never leave this thread except as new ciphertexts; plaintexts are zeroed after use.
import { randomBytes } from 'node:crypto'
import { setPriority } from 'node:os'
import { parentPort } from 'node:worker_threads'
import { NONCE_LENGTH, open, seal, type DataKey } from './envelope.js'
import type { ResealRequest, ResealResponse } from './reseal-workers.js'

const port = parentPort
if (port) {
  // @NOTE on Linux a nice value is per thread: the reseal's AES work yields the CPU to the
  // threads serving requests. Elsewhere this may fail or apply to the process; then it is skipped.
  if (process.platform === 'linux') {
    try {
      setPriority(19)
    } catch { /* not permitted: run at normal priority */ }
  }
  port.on('message', (req: ResealRequest) => {
    const keys = new Map<number, DataKey>(req.oldKeys.map((k) => [k.version, { id: k.id, version: k.version, key: Buffer.from(k.key) }]))
    const next: DataKey = { id: req.next.id, version: req.next.version, key: Buffer.from(req.next.key) }
    const nonces = randomBytes(NONCE_LENGTH * req.items.length)
    const out: Uint8Array[] = []
    let failed: number | undefined
    for (let i = 0; i < req.items.length; i++) {
      const it = req.items[i]!
      const old = keys.get(it.oldVersion)
      let plain: Buffer
      try {
        if (!old) throw new Error('no key')
        plain = open(old, it.ct, it.binding)
      } catch {
        failed = i
        break
      }
      out.push(seal(next, plain, it.binding, nonces.subarray(i * NONCE_LENGTH, (i + 1) * NONCE_LENGTH)))
      plain.fill(0)
    }
    for (const k of keys.values()) k.key.fill(0)
    next.key.fill(0)
    const res: ResealResponse = failed === undefined ? { id: req.id, out } : { id: req.id, failed }
    port.postMessage(res)
  })
}
