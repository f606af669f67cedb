import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { realpathSync } from 'node:fs'
import type { PKCS11 as Pkcs11Lib } from 'pkcs11js'
import { ConfigError, DecryptionError } from '../errors.js'
import type { KeyProvider } from './key-provider.js'

type Pkcs11Js = typeof import('pkcs11js')
type Handle = Buffer

const WRAP_VERSION = 0x02
const IV = 12
const TAG = 16

/** Where to find the root key: the module, the token (by label), its user PIN, the key (by label). */
export interface Pkcs11Options {
  /** Path of the PKCS#11 module (a shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string
  readonly tokenLabel: string
  readonly pin: string
  readonly keyLabel: string
}

// One PKCS#11 module is initialised once per process, and login state belongs to the token,
// not the session: a second C_Login answers CKR_USER_ALREADY_LOGGED_IN and one C_Logout logs
// out every session. Providers therefore share the module and the login through this
// registry; the last one to close logs out and finalises.
interface LoadedModule {
  readonly p: Pkcs11Js
  readonly lib: Pkcs11Lib
  readonly ownsInit: boolean
  refs: number
  readonly logins: Map<string, TokenLogin>
}
interface TokenLogin {
  refs: number
  readonly pinTag: Buffer
}
interface OpenedSession {
  readonly path: string
  readonly mod: LoadedModule
  readonly slotKey: string
  readonly session: Handle
}

const modules = new Map<string, LoadedModule>()
// PINs are compared against the one a shared login used through a keyed hash; the PIN itself
// is never kept.
const PIN_TAG_KEY = randomBytes(32)

/**
 * The `pkcs11` provider: the root key is a sensitive, non-extractable AES-256 key inside a
 * PKCS#11 token and never leaves it. Wrapped DEKs are 0x02 ‖ IV ‖ AES-256-GCM(dek) ‖ tag,
 * computed by the token with the scope as AAD. Calls on the one session are serialised.
 */
export class Pkcs11KeyProvider implements KeyProvider {
  readonly kind = 'pkcs11'
  readonly keyId: string
  readonly #p: Pkcs11Js
  readonly #opened: OpenedSession
  readonly #key: Handle
  #tail: Promise<unknown> = Promise.resolve()
  #closed = false

  private constructor(p: Pkcs11Js, opened: OpenedSession, key: Handle, keyId: string) {
    this.#p = p
    this.#opened = opened
    this.#key = key
    this.keyId = keyId
  }

  /**
   * Loads the module, finds the token by label, logs in and finds the key by label. Every
   * failure is a ConfigError naming the COFFER_PKCS11_* setting at fault; no message
   * contains the PIN.
   */
  static async open(options: Pkcs11Options): Promise<Pkcs11KeyProvider> {
    const opened = await openSession(options, false)
    try {
      const { p, lib } = opened.mod
      const key = findKey(p, lib, opened.session, options.keyLabel)
      if (key === null) throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'no AES secret key with that label is on the token')
      const [type, len, sensitive, extractable, encrypt, decrypt] = lib
        .C_GetAttributeValue(opened.session, key, [
          { type: p.CKA_KEY_TYPE },
          { type: p.CKA_VALUE_LEN },
          { type: p.CKA_SENSITIVE },
          { type: p.CKA_EXTRACTABLE },
          { type: p.CKA_ENCRYPT },
          { type: p.CKA_DECRYPT },
        ])
        .map((a) => a.value)
      if (ulong(type) !== p.CKK_AES || ulong(len) !== 32) throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'the key must be an AES-256 key')
      if (!bool(sensitive) || bool(extractable))
        throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'the key must be sensitive and non-extractable')
      if (!bool(encrypt) || !bool(decrypt)) throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'the key must allow encrypt and decrypt')
      return new Pkcs11KeyProvider(p, opened, key, keyIdOf(options, readId(p, lib, opened.session, key)))
    } catch (err) {
      releaseSession(opened)
      throw err
    }
  }

  /**
   * Generates the root key inside the token: AES-256, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
   * not CKA_EXTRACTABLE, with encrypt/decrypt/wrap/unwrap, a random CKA_ID and `keyLabel`.
   * Refuses a label that is already taken. Returns the keyId a provider on it will report.
   */
  static async createRootKey(options: Pkcs11Options): Promise<string> {
    const opened = await openSession(options, true)
    try {
      const { p, lib } = opened.mod
      if (findKey(p, lib, opened.session, options.keyLabel) !== null) {
        throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'a key with that label already exists on the token')
      }
      const id = randomBytes(8)
      lib.C_GenerateKey(opened.session, { mechanism: p.CKM_AES_KEY_GEN }, [
        { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
        { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
        { type: p.CKA_VALUE_LEN, value: 32 },
        { type: p.CKA_LABEL, value: options.keyLabel },
        { type: p.CKA_ID, value: id },
        { type: p.CKA_TOKEN, value: true },
        { type: p.CKA_PRIVATE, value: true },
        { type: p.CKA_SENSITIVE, value: true },
        { type: p.CKA_EXTRACTABLE, value: false },
        { type: p.CKA_ENCRYPT, value: true },
        { type: p.CKA_DECRYPT, value: true },
        { type: p.CKA_WRAP, value: true },
        { type: p.CKA_UNWRAP, value: true },
      ])
      return keyIdOf(options, id)
    } finally {
      releaseSession(opened)
    }
  }

  async wrap(dek: Buffer, aad: Buffer): Promise<Buffer> {
    return this.#run(async () => {
      const { lib } = this.#opened.mod
      const iv = randomBytes(IV)
      lib.C_EncryptInit(this.#opened.session, this.#gcm(iv, aad), this.#key)
      const body = await lib.C_EncryptAsync(this.#opened.session, dek, Buffer.alloc(dek.length + TAG))
      return Buffer.concat([Buffer.of(WRAP_VERSION), iv, body])
    })
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    if (wrapped.length < 1 + IV + TAG || wrapped[0] !== WRAP_VERSION) throw new DecryptionError()
    return this.#run(async () => {
      const { lib } = this.#opened.mod
      const body = wrapped.subarray(1 + IV)
      try {
        lib.C_DecryptInit(this.#opened.session, this.#gcm(wrapped.subarray(1, 1 + IV), aad), this.#key)
        // The output buffer is as long as the input, so C_Decrypt never answers
        // CKR_BUFFER_TOO_SMALL (which would leave the operation active on the session).
        return await lib.C_DecryptAsync(this.#opened.session, body, Buffer.alloc(body.length))
      } catch {
        throw new DecryptionError()
      }
    })
  }

  /** Waits for queued calls, then logs out (if last on the token), closes the session and finalises (if last). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#tail
    releaseSession(this.#opened)
  }

  #gcm(iv: Buffer, aad: Buffer) {
    return {
      mechanism: this.#p.CKM_AES_GCM,
      parameter: { type: this.#p.CK_PARAMS_AES_GCM, iv: Buffer.from(iv), ivBits: IV * 8, aad: Buffer.from(aad), tagBits: TAG * 8 },
    }
  }

  /** Runs `fn` after every earlier call on this session has settled. */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the key provider is closed'))
    const result = this.#tail.then(fn)
    this.#tail = result.catch(() => {})
    return result
  }
}

async function loadPkcs11js(): Promise<Pkcs11Js> {
  try {
    const m = (await import('pkcs11js')) as Pkcs11Js & { default?: Pkcs11Js }
    return m.default ?? m
  } catch {
    throw new ConfigError(
      'COFFER_PKCS11_MODULE',
      'the pkcs11js native addon could not be loaded; reinstall Coffer with a C++ toolchain available',
    )
  }
}

function acquireModule(p: Pkcs11Js, modulePath: string): { path: string; mod: LoadedModule } {
  let path: string
  try {
    path = realpathSync(modulePath)
  } catch {
    throw new ConfigError('COFFER_PKCS11_MODULE', `no PKCS#11 module at ${modulePath}`)
  }
  const loaded = modules.get(path)
  if (loaded) {
    loaded.refs++
    return { path, mod: loaded }
  }
  const lib = new p.PKCS11()
  try {
    lib.load(path)
  } catch {
    throw new ConfigError('COFFER_PKCS11_MODULE', `${modulePath} could not be loaded as a PKCS#11 module`)
  }
  let ownsInit = true
  try {
    lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK })
  } catch (err) {
    if (ckr(err) === p.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ownsInit = false
    } else {
      lib.close()
      throw new ConfigError('COFFER_PKCS11_MODULE', `the PKCS#11 module did not initialise (${ckrName(p, err)})`)
    }
  }
  const mod: LoadedModule = { p, lib, ownsInit, refs: 1, logins: new Map() }
  modules.set(path, mod)
  return { path, mod }
}

function releaseModule(path: string, mod: LoadedModule): void {
  if (--mod.refs > 0) return
  modules.delete(path)
  if (mod.ownsInit) ignore(() => mod.lib.C_Finalize())
  ignore(() => mod.lib.close())
}

/** Acquires the module, finds the token, opens a session and logs in (or joins the login). */
async function openSession(options: Pkcs11Options, rw: boolean): Promise<OpenedSession> {
  const p = await loadPkcs11js()
  // Everything below is synchronous, so concurrent opens cannot interleave in the registry.
  const { path, mod } = acquireModule(p, options.module)
  const { lib } = mod
  let session: Handle | null = null
  try {
    const slot = findSlot(p, lib, options.tokenLabel)
    const slotKey = slot.toString('hex')
    session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION | (rw ? p.CKF_RW_SESSION : 0))
    login(mod, slotKey, session, options.pin)
    return { path, mod, slotKey, session }
  } catch (err) {
    const s = session
    if (s) ignore(() => lib.C_CloseSession(s))
    releaseModule(path, mod)
    throw err
  }
}

function releaseSession(opened: OpenedSession): void {
  const { mod, slotKey, session, path } = opened
  const l = mod.logins.get(slotKey)
  if (l && --l.refs === 0) {
    mod.logins.delete(slotKey)
    ignore(() => mod.lib.C_Logout(session))
  }
  ignore(() => mod.lib.C_CloseSession(session))
  releaseModule(path, mod)
}

function findSlot(p: Pkcs11Js, lib: Pkcs11Lib, label: string): Handle {
  if (label === '') throw new ConfigError('COFFER_PKCS11_TOKEN_LABEL', 'the token label is empty')
  let slots: Handle[]
  try {
    slots = lib.C_GetSlotList(true)
  } catch (err) {
    throw new ConfigError('COFFER_PKCS11_MODULE', `the PKCS#11 module could not list its slots (${ckrName(p, err)})`)
  }
  const matches = slots.filter((s) => {
    try {
      const info = lib.C_GetTokenInfo(s)
      return (info.flags & p.CKF_TOKEN_INITIALIZED) !== 0 && info.label.trimEnd() === label
    } catch {
      return false
    }
  })
  if (matches.length > 1) throw new ConfigError('COFFER_PKCS11_TOKEN_LABEL', 'more than one token has that label')
  const slot = matches[0]
  if (!slot) throw new ConfigError('COFFER_PKCS11_TOKEN_LABEL', 'no initialised token with that label is present')
  return slot
}

function login(mod: LoadedModule, slotKey: string, session: Handle, pin: string): void {
  const { p, lib } = mod
  const pinTag = createHmac('sha256', PIN_TAG_KEY).update(pin, 'utf8').digest()
  const shared = mod.logins.get(slotKey)
  if (shared) {
    if (!timingSafeEqual(shared.pinTag, pinTag)) throw new ConfigError('COFFER_PKCS11_PIN', 'the PIN is incorrect')
    shared.refs++
    return
  }
  try {
    lib.C_Login(session, p.CKU_USER, pin)
  } catch (err) {
    const code = ckr(err)
    const why =
      code === p.CKR_PIN_INCORRECT
        ? 'the PIN is incorrect'
        : code === p.CKR_PIN_LOCKED
          ? 'the PIN is locked on the token'
          : code === p.CKR_PIN_LEN_RANGE
            ? 'the PIN has a length the token does not accept'
            : `logging in to the token failed (${ckrName(p, err)})`
    throw new ConfigError('COFFER_PKCS11_PIN', why)
  }
  mod.logins.set(slotKey, { refs: 1, pinTag })
}

/** The one AES secret key labelled `label`, or null; more than one is a ConfigError. */
function findKey(p: Pkcs11Js, lib: Pkcs11Lib, session: Handle, label: string): Handle | null {
  if (label === '') throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'the key label is empty')
  lib.C_FindObjectsInit(session, [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_LABEL, value: label },
  ])
  let found: Handle[]
  try {
    found = lib.C_FindObjects(session, 2)
  } finally {
    lib.C_FindObjectsFinal(session)
  }
  if (found.length > 1) throw new ConfigError('COFFER_PKCS11_KEY_LABEL', 'more than one key on the token has that label')
  return found[0] ?? null
}

function readId(p: Pkcs11Js, lib: Pkcs11Lib, session: Handle, key: Handle): Buffer {
  return lib.C_GetAttributeValue(session, key, [{ type: p.CKA_ID }])[0]?.value ?? Buffer.alloc(0)
}

function keyIdOf(options: Pkcs11Options, id: Buffer): string {
  return `pkcs11:${options.tokenLabel}/${options.keyLabel}${id.length > 0 ? `#${id.toString('hex')}` : ''}`
}

/** A CK_ULONG / CK_BBOOL attribute value in host byte order. */
function ulong(b: Buffer | undefined): number {
  if (!b) return -1
  if (b.length === 8) return Number(b.readBigUInt64LE())
  if (b.length === 4) return b.readUInt32LE()
  return -1
}
function bool(b: Buffer | undefined): boolean {
  return !!b && b.length === 1 && b[0] !== 0
}

function ckr(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

function ckrName(p: Pkcs11Js, err: unknown): string {
  const code = ckr(err)
  if (code === undefined) return 'native error'
  const name = Object.keys(p).find((k) => k.startsWith('CKR_') && (p as unknown as Record<string, unknown>)[k] === code)
  return name ?? `CKR 0x${code.toString(16)}`
}

function ignore(fn: () => void): void {
  try {
    fn()
  } catch {}
}
