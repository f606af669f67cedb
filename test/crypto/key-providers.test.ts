import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalFileKeyProvider } from '../../src/crypto/local-file-key-provider.js'
import { Pkcs11KeyProvider, type Pkcs11Options } from '../../src/crypto/pkcs11-key-provider.js'
import { CofferError } from '../../src/errors.js'
import { exerciseKeyProvider } from './exercise-key-provider.js'

// SoftHSM2 reads SOFTHSM2_CONF at C_Initialize; node's test runner gives this file its own
// process, so the private config is set here, before any provider loads the module.
const HSM_DIR = mkdtempSync(join(tmpdir(), 'coffer-softhsm-'))
mkdirSync(join(HSM_DIR, 'tokens'))
writeFileSync(
  join(HSM_DIR, 'softhsm2.conf'),
  `directories.tokendir = ${join(HSM_DIR, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
)
process.env.SOFTHSM2_CONF = join(HSM_DIR, 'softhsm2.conf')
after(() => rmSync(HSM_DIR, { recursive: true, force: true }))

const MODULE = '/usr/lib/softhsm/libsofthsm2.so'
const TOKEN = 'coffer-test'
const PIN = '1234'
const base: Pkcs11Options = { module: MODULE, tokenLabel: TOKEN, pin: PIN, keyLabel: 'coffer-root-a' }

let token: Promise<void> | undefined
/** Initialises the token and its two root keys once; fails (never skips) without SoftHSM2. */
function softHsm(): Promise<void> {
  token ??= (async () => {
    const probe = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' })
    if (probe.error) throw new Error('softhsm2-util was not found: run `apt-get install -y softhsm2` to test the PKCS#11 key provider')
    const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--pin', PIN, '--so-pin', '5678'], {
      encoding: 'utf8',
      env: process.env,
    })
    if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr || init.stdout}`)
    await Pkcs11KeyProvider.createRootKey(base)
    await Pkcs11KeyProvider.createRootKey({ ...base, keyLabel: 'coffer-root-b' })
  })()
  return token
}

const localA = randomBytes(32)
const localB = randomBytes(32)
exerciseKeyProvider('LocalFileKeyProvider', async () => {
  const provider = new LocalFileKeyProvider(localA)
  const otherProvider = new LocalFileKeyProvider(localB)
  return { provider, otherProvider, close: async () => void (await Promise.all([provider.close(), otherProvider.close()])) }
})

// Both root keys live on one token, so the two providers also share its login.
exerciseKeyProvider('Pkcs11KeyProvider (SoftHSM2)', async () => {
  await softHsm()
  const provider = await Pkcs11KeyProvider.open(base)
  const otherProvider = await Pkcs11KeyProvider.open({ ...base, keyLabel: 'coffer-root-b' }).catch(async (err) => {
    await provider.close()
    throw err
  })
  return { provider, otherProvider, close: async () => void (await Promise.all([provider.close(), otherProvider.close()])) }
})

/** Awaits `p`, which must reject with ConfigError naming `setting` and never showing `pin`. */
async function rejectsConfig(p: Promise<unknown>, setting: string, pin: string): Promise<void> {
  let thrown: unknown
  try {
    await p
  } catch (err) {
    thrown = err
  }
  assert.ok(
    thrown instanceof CofferError,
    `expected a ConfigError for ${setting}, got ${thrown === undefined ? 'success' : 'another error'}`,
  )
  assert.equal(thrown.code, 'ERR_CONFIG')
  assert.equal((thrown as CofferError & { setting?: string }).setting, setting)
  assert.ok(!thrown.message.includes(pin) && !String(thrown.stack).includes(pin), `the ${setting} error shows the PIN`)
}

describe('Pkcs11KeyProvider.open failures', () => {
  const WRONG = 'wrong-pin-8642'

  test('a wrong PIN is ERR_CONFIG naming COFFER_PKCS11_PIN', async () => {
    await softHsm()
    await rejectsConfig(Pkcs11KeyProvider.open({ ...base, pin: WRONG }), 'COFFER_PKCS11_PIN', WRONG)
  })

  test('a wrong PIN is refused while another provider is logged in to the token', async () => {
    await softHsm()
    const open = await Pkcs11KeyProvider.open(base)
    try {
      await rejectsConfig(Pkcs11KeyProvider.open({ ...base, keyLabel: 'coffer-root-b', pin: WRONG }), 'COFFER_PKCS11_PIN', WRONG)
    } finally {
      await open.close()
    }
  })

  test('an unknown token label is ERR_CONFIG naming COFFER_PKCS11_TOKEN_LABEL', async () => {
    await softHsm()
    await rejectsConfig(Pkcs11KeyProvider.open({ ...base, tokenLabel: 'no-such-token' }), 'COFFER_PKCS11_TOKEN_LABEL', PIN)
  })

  test('an unknown key label is ERR_CONFIG naming COFFER_PKCS11_KEY_LABEL', async () => {
    await softHsm()
    await rejectsConfig(Pkcs11KeyProvider.open({ ...base, keyLabel: 'no-such-key' }), 'COFFER_PKCS11_KEY_LABEL', PIN)
  })

  test('a missing module file is ERR_CONFIG naming COFFER_PKCS11_MODULE', async () => {
    await rejectsConfig(
      Pkcs11KeyProvider.open({ ...base, module: '/nonexistent/coffer/libpkcs11-missing.so' }),
      'COFFER_PKCS11_MODULE',
      PIN,
    )
  })

  test('createRootKey refuses a label already taken', async () => {
    await softHsm()
    await rejectsConfig(Pkcs11KeyProvider.createRootKey(base), 'COFFER_PKCS11_KEY_LABEL', PIN)
  })

  test('after the failures a provider still opens and works', async () => {
    await softHsm()
    const p = await Pkcs11KeyProvider.open(base)
    try {
      const dek = randomBytes(32)
      assert.ok((await p.unwrap(await p.wrap(dek, Buffer.of(1)), Buffer.of(1))).equals(dek))
    } finally {
      await p.close()
    }
  })
})
