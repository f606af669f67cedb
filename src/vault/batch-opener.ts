import { AadWriter, type DataKey, isSealedUnder, keyRefOf, openWithAad, type ScopeIds } from '../crypto/envelope.js'
import { DecryptionError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from './data-keys.js'

/**
 * Opens the ciphertexts of one environment for one request (an environment fetch: `run`,
 * `export`, a reveal of the list). The data keys the headers name are looked up once each
 * — an environment's values name one key, two during a reseal — instead of once per value,
 * and each key's AAD prefix ("coffer/v1" ‖ header ‖ workspace ‖ project ‖ environment) is
 * written once. Same envelope, same AAD, same single DecryptionError as `open`.
 *
 * @NOTE holds keys (the DEK cache's own objects) and no plaintext: each opened value is
 * zeroed as soon as it has become a string. Make one per request; never keep it.
 */
export class BatchOpener {
  readonly #keys: DataKey[]
  readonly #aad: AadWriter[]

  private constructor(keys: DataKey[], scope: ScopeIds) {
    this.#keys = keys
    this.#aad = keys.map((k) => new AadWriter(k, scope))
  }

  /**
   * An opener for `ciphertexts` (nulls are skipped), all of `scope`: finds every key they
   * name. Throws DecryptionError if one is not a v1 ciphertext or names a key the scope does
   * not hold.
   */
  static async of(
    dataKeys: Pick<DataKeys, 'byRef'>,
    db: Executor,
    scope: ScopeIds,
    ciphertexts: Iterable<Uint8Array | null>,
  ): Promise<BatchOpener> {
    const keys: DataKey[] = []
    for (const ct of ciphertexts) {
      if (ct === null || keys.some((k) => isSealedUnder(ct, k))) continue
      keys.push(await dataKeys.byRef(db, keyRefOf(ct), scope))
    }
    return new BatchOpener(keys, scope)
  }

  /** The UTF-8 plaintext of `ciphertext` (null for null), sealed for this record and field. */
  open(ciphertext: Uint8Array | null, recordId: string, recordVersion: number, field: string): string | null {
    if (ciphertext === null) return null
    const keys = this.#keys
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as DataKey
      if (!isSealedUnder(ciphertext, key)) continue
      const plain = openWithAad(key, ciphertext, (this.#aad[i] as AadWriter).of(recordId, recordVersion, field))
      const text = plain.toString('utf8')
      plain.fill(0)
      return text
    }
    throw new DecryptionError()
  }
}
