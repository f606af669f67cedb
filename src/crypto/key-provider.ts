import { lp, u64be, uuidToBytes } from './encoding.js'

/**
 * A root key (KEK) source. The root key only wraps and unwraps data keys; it never
 * encrypts data, and where the provider can keep it (an HSM, a KMS) it never leaves it.
 */
export interface KeyProvider {
  /** Provider kind, as named in configuration. */
  readonly kind: string
  /** A stable, non-secret identifier of the root key in use (stored beside every EDEK). */
  readonly keyId: string
  /** Wraps a plaintext data key; `aad` binds the wrapped form to its scope. */
  wrap(dek: Buffer, aad: Buffer): Promise<Buffer>
  /**
   * Unwraps a data key. Throws DecryptionError for any failure: a wrong root key, a moved
   * EDEK and a flipped bit look alike.
   */
  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer>
  /** Releases handles (HSM sessions, sockets). */
  close(): Promise<void>
}

/** The scope a data key belongs to: a (project, environment), or a workspace with empty ids. */
export interface DataKeyScope {
  readonly workspaceId: string
  readonly projectId: string
  readonly environmentId: string
}

const DEK_AAD_PREFIX = Buffer.from('coffer/dek/v1', 'utf8')
const FINGERPRINT_AAD_PREFIX = Buffer.from('coffer/fingerprint-key/v1', 'utf8')

/** AAD of the root-key check value (the `root_key_check` meta row): wraps nothing else. */
export const ROOT_CHECK_AAD = Buffer.from('coffer/root-key-check/v1', 'utf8')

/**
 * AAD of a workspace's wrapped audit fingerprint key: "coffer/fingerprint-key/v1" ‖
 * lp(workspace). A fingerprint key moved to another workspace does not unwrap.
 */
export function fingerprintAad(workspaceId: string): Buffer {
  return Buffer.concat([FINGERPRINT_AAD_PREFIX, lp(workspaceId)])
}

/**
 * AAD for a wrapped DEK: "coffer/dek/v1" ‖ DEK id ‖ u64be(version) ‖ lp(workspace) ‖
 * lp(project) ‖ lp(environment). An EDEK moved to another scope or version does not unwrap.
 */
export function dataKeyAad(dekId: string, version: number, scope: DataKeyScope): Buffer {
  return Buffer.concat([
    DEK_AAD_PREFIX,
    uuidToBytes(dekId),
    u64be(version),
    lp(scope.workspaceId),
    lp(scope.projectId),
    lp(scope.environmentId),
  ])
}
