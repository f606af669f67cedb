import { randomBytes } from 'node:crypto'
import { AadWriter, NONCE_LENGTH, OVERHEAD, openWithAad, sealInto, type DataKey, type ScopeIds } from './envelope.js'

// A reseal batch in packed form: what the worker threads get and what the in-thread reseal
// works on. Items share their scope; their ciphertexts sit end to end in one buffer; the
// other per-item parts are typed arrays. A batch crosses to a worker by transferring its
// ArrayBuffers instead of cloning an object per item, and the new ciphertexts come back the
// same way, in one buffer with the same offsets.

/** The fields a reseal batch may hold, by their code in `ResealBatch.fields`. */
export const RESEAL_FIELDS = ['value', 'comment'] as const
export type ResealField = (typeof RESEAL_FIELDS)[number]
export const FIELD_VALUE = 0
export const FIELD_COMMENT = 1

/** Ciphertexts of one scope to move from their old key versions to a new key. */
export interface ResealBatch {
  /** The workspace, project and environment every item belongs to. */
  readonly scope: ScopeIds
  readonly count: number
  /** Every item's ciphertext, end to end: item i is `cts[offsets[i], offsets[i + 1])`. */
  readonly cts: Uint8Array
  /** count + 1 offsets into `cts`, ascending; the first is 0, the last is `cts.length`. */
  readonly offsets: Uint32Array
  readonly recordIds: string[]
  readonly recordVersions: Float64Array
  /** Index into RESEAL_FIELDS (FIELD_VALUE or FIELD_COMMENT). */
  readonly fields: Uint8Array
  /** The key version each item's row names; its ciphertext must open under exactly that version. */
  readonly oldVersions: Uint32Array
}

/** Thrown when an item does not open under the key version it names; `index` is the item's. */
export class ResealItemError extends Error {
  constructor(readonly index: number) {
    super('a ciphertext does not open under the key version it names')
  }
}

/**
 * Fills a batch whose size is known in advance (item count and total ciphertext bytes), so
 * every array is allocated once, each on its own ArrayBuffer (transferable).
 */
export class ResealBatchBuilder {
  readonly #scope: ScopeIds
  readonly #cts: Uint8Array
  readonly #offsets: Uint32Array
  readonly #recordIds: string[] = []
  readonly #recordVersions: Float64Array
  readonly #fields: Uint8Array
  readonly #oldVersions: Uint32Array
  #count = 0

  constructor(scope: ScopeIds, items: number, bytes: number) {
    this.#scope = { workspaceId: scope.workspaceId, projectId: scope.projectId, environmentId: scope.environmentId }
    this.#cts = new Uint8Array(bytes)
    this.#offsets = new Uint32Array(items + 1)
    this.#recordVersions = new Float64Array(items)
    this.#fields = new Uint8Array(items)
    this.#oldVersions = new Uint32Array(items)
  }

  /** Appends one item; returns its index. */
  add(ct: Uint8Array, recordId: string, recordVersion: number, field: number, oldVersion: number): number {
    if (field !== FIELD_VALUE && field !== FIELD_COMMENT) throw new TypeError('unknown reseal field')
    const i = this.#count
    if (i >= this.#fields.length) throw new RangeError('the reseal batch is full')
    const at = this.#offsets[i]!
    if (at + ct.length > this.#cts.length) throw new RangeError('the reseal batch is full')
    this.#cts.set(ct, at)
    this.#offsets[i + 1] = at + ct.length
    this.#recordIds.push(recordId)
    this.#recordVersions[i] = recordVersion
    this.#fields[i] = field
    this.#oldVersions[i] = oldVersion
    this.#count = i + 1
    return i
  }

  /** The batch; every item announced to the constructor must have been added. */
  build(): ResealBatch {
    if (this.#count !== this.#fields.length || this.#offsets[this.#count] !== this.#cts.length) {
      throw new Error('the reseal batch holds fewer items or bytes than announced')
    }
    return {
      scope: this.#scope,
      count: this.#count,
      cts: this.#cts,
      offsets: this.#offsets,
      recordIds: this.#recordIds,
      recordVersions: this.#recordVersions,
      fields: this.#fields,
      oldVersions: this.#oldVersions,
    }
  }
}

/** Items [from, to) of `b` as a batch of their own, in fresh (transferable) buffers. */
export function sliceResealBatch(b: ResealBatch, from: number, to: number): ResealBatch {
  const base = b.offsets[from]!
  const offsets = new Uint32Array(to - from + 1)
  for (let i = from; i <= to; i++) offsets[i - from] = b.offsets[i]! - base
  return {
    scope: b.scope,
    count: to - from,
    cts: b.cts.slice(base, b.offsets[to]),
    offsets,
    recordIds: b.recordIds.slice(from, to),
    recordVersions: b.recordVersions.slice(from, to),
    fields: b.fields.slice(from, to),
    oldVersions: b.oldVersions.slice(from, to),
  }
}

/** The ArrayBuffers to transfer with `b` (the batch is unusable on the sending side afterwards). */
export function resealBatchTransferList(b: ResealBatch): ArrayBuffer[] {
  return [b.cts.buffer, b.offsets.buffer, b.recordVersions.buffer, b.fields.buffer, b.oldVersions.buffer] as ArrayBuffer[]
}

/**
 * Opens every item of `batch` with the exact old key version it names and seals the
 * plaintext under `next` with the same binding and a fresh random nonce, writing the new
 * ciphertext into `out` at the item's offset (`out` is as long as `batch.cts`: a v1
 * ciphertext resealed under another key keeps its length). Each plaintext is zeroed right
 * after use. The first item that does not open throws ResealItemError with its index; `out`
 * is then incomplete and must not be used. Used by the worker threads and by the in-thread
 * reseal alike.
 */
export function resealBatch(batch: ResealBatch, oldKeys: ReadonlyMap<number, DataKey>, next: DataKey, out: Uint8Array): void {
  const { count, cts, offsets, recordIds, recordVersions, fields, oldVersions } = batch
  if (out.length !== cts.length) throw new RangeError('the output must be as long as the batch ciphertexts')
  if (offsets.length !== count + 1 || offsets[0] !== 0 || offsets[count] !== cts.length) throw new RangeError('malformed reseal batch')
  const readers = new Map<number, { key: DataKey; aad: AadWriter }>()
  const writer = new AadWriter(next, batch.scope)
  const nonces = randomBytes(NONCE_LENGTH * count)
  for (let i = 0; i < count; i++) {
    const start = offsets[i]!
    const end = offsets[i + 1]!
    const recordId = recordIds[i]!
    const recordVersion = recordVersions[i]!
    const field = RESEAL_FIELDS[fields[i]!]
    const old = oldVersions[i]!
    let r = readers.get(old)
    if (!r) {
      const key = oldKeys.get(old)
      if (!key) throw new ResealItemError(i)
      r = { key, aad: new AadWriter(key, batch.scope) }
      readers.set(old, r)
    }
    if (field === undefined) throw new ResealItemError(i)
    let plain: Buffer
    try {
      plain = openWithAad(r.key, cts.subarray(start, end), r.aad.of(recordId, recordVersion, field))
    } catch {
      throw new ResealItemError(i)
    }
    try {
      if (OVERHEAD + plain.length !== end - start) throw new Error('a resealed ciphertext would change length')
      sealInto(
        next,
        writer.of(recordId, recordVersion, field),
        plain,
        nonces.subarray(i * NONCE_LENGTH, (i + 1) * NONCE_LENGTH),
        out,
        start,
      )
    } finally {
      plain.fill(0)
    }
  }
}
