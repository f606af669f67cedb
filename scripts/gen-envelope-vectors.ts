// GENERATES test/vectors/envelope-v1.json. Do not edit that file by hand; change this script
// and run:
//
//   node --import tsx scripts/gen-envelope-vectors.ts           # (re)write the file
//   node --import tsx scripts/gen-envelope-vectors.ts --check   # exit 1 if the file is stale
//
// Known-answer vectors for the v1 ciphertext format of src/crypto/envelope.ts and for the
// AAD of wrapped data keys (dataKeyAad in src/crypto/key-provider.ts), plus the wrapped form
// of the `local` key provider. Every input below is a fixed, public test value (never a real
// key). Expected bytes are computed by an independent implementation of the documented layout
// in this file (node:crypto AES-256-GCM, header and AAD built by hand); the script aborts if
// src/crypto disagrees with it on any vector. test/vectors/README.md describes the fields.

import { createCipheriv, createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { associatedData, open, seal, type Binding } from '../src/crypto/envelope.js'
import { dataKeyAad, type DataKeyScope } from '../src/crypto/key-provider.js'
import { LocalFileKeyProvider } from '../src/crypto/local-file-key-provider.js'

const OUT_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'vectors', 'envelope-v1.json')

// ---- inputs (public test values)

const WS = '0b6c1f7e-3d2a-4c5b-8e9f-a1b2c3d4e5f6'
const PROJ = '5f0e9a3c-7b21-4d88-9c4e-1a2b3c4d5e6f'
const ENV = 'c9d8e7f6-a5b4-4c3d-8e2f-0f1e2d3c4b5a'
const REC = '7d3b2a19-8c6e-4f50-b1a2-93c4d5e6f708'
const DEK_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301'
const DEK_ID_2 = 'ffffffff-ffff-4fff-bfff-ffffffffffff'

const KEY_SEQ = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
const KEY_NIST = 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'
const KEY_HASH = createHash('sha256').update('coffer envelope-v1 test vector key').digest('hex')

const PT_1000 = Buffer.from(Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff)).toString('hex')

interface EnvelopeInput {
  name: string
  dekKey: string
  dekId: string
  dekVersion: number
  binding: { workspaceId: string; projectId: string; environmentId: string; recordId: string; recordVersion: bigint; field: string }
  nonce: string
  plaintext: string
}

const base = { workspaceId: WS, projectId: PROJ, environmentId: ENV, recordId: REC, recordVersion: 1n, field: 'value' }
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('hex')

const ENVELOPE_INPUTS: EnvelopeInput[] = [
  {
    name: 'empty plaintext',
    dekKey: KEY_SEQ,
    dekId: DEK_ID,
    dekVersion: 1,
    binding: base,
    nonce: '000000000000000000000000',
    plaintext: '',
  },
  { name: 'one byte', dekKey: KEY_SEQ, dekId: DEK_ID, dekVersion: 1, binding: base, nonce: '000102030405060708090a0b', plaintext: '00' },
  {
    name: 'utf-8 multibyte plaintext',
    dekKey: KEY_NIST,
    dekId: DEK_ID,
    dekVersion: 2,
    binding: { ...base, recordVersion: 3n },
    nonce: 'cafebabefacedbaddecaf888',
    plaintext: utf8('pässwörd — 秘密 🔑'),
  },
  {
    name: '1000-byte plaintext',
    dekKey: KEY_HASH,
    dekId: DEK_ID,
    dekVersion: 7,
    binding: { ...base, recordVersion: 42n },
    nonce: '9e8d7c6b5a49382716050403',
    plaintext: PT_1000,
  },
  {
    name: 'record version 2^40',
    dekKey: KEY_SEQ,
    dekId: DEK_ID,
    dekVersion: 1,
    binding: { ...base, recordVersion: 2n ** 40n },
    nonce: '0f0e0d0c0b0a090807060504',
    plaintext: utf8('postgres://app:hunter2@db.internal/app'),
  },
  {
    name: 'record version 2^64-1 and DEK version 2^32-1',
    dekKey: KEY_NIST,
    dekId: DEK_ID_2,
    dekVersion: 0xffffffff,
    binding: { ...base, recordVersion: 2n ** 64n - 1n },
    nonce: 'ffffffffffffffffffffffff',
    plaintext: utf8('max'),
  },
  {
    name: 'comment field (same inputs as "one byte" but field "comment")',
    dekKey: KEY_SEQ,
    dekId: DEK_ID,
    dekVersion: 1,
    binding: { ...base, field: 'comment' },
    nonce: '000102030405060708090a0b',
    plaintext: '00',
  },
  {
    name: 'workspace-scoped value (empty project and environment ids)',
    dekKey: KEY_HASH,
    dekId: DEK_ID_2,
    dekVersion: 1,
    binding: { workspaceId: WS, projectId: '', environmentId: '', recordId: 'webhook:8a1c', recordVersion: 0n, field: 'signing_secret' },
    nonce: '5c5c5c5c5c5c5c5c5c5c5c5c',
    plaintext: utf8('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
  },
  {
    name: 'multibyte binding strings (length prefixes count bytes, not characters)',
    dekKey: KEY_SEQ,
    dekId: DEK_ID,
    dekVersion: 3,
    binding: { workspaceId: 'wś', projectId: 'prøject', environmentId: 'prod—eu', recordId: '秘密', recordVersion: 65536n, field: 'välue' },
    nonce: '1234567890abcdef12345678',
    plaintext: utf8('x'),
  },
  {
    name: 'exactly one AES block',
    dekKey: KEY_HASH,
    dekId: DEK_ID,
    dekVersion: 1,
    binding: { ...base, recordVersion: 255n },
    nonce: 'a0a1a2a3a4a5a6a7a8a9aaab',
    plaintext: '00112233445566778899aabbccddeeff',
  },
]

interface DekAadInput {
  name: string
  dekId: string
  dekVersion: number
  scope: DataKeyScope
}

const DEK_AAD_INPUTS: DekAadInput[] = [
  {
    name: 'project/environment key, version 1',
    dekId: DEK_ID,
    dekVersion: 1,
    scope: { workspaceId: WS, projectId: PROJ, environmentId: ENV },
  },
  { name: 'same key, version 2', dekId: DEK_ID, dekVersion: 2, scope: { workspaceId: WS, projectId: PROJ, environmentId: ENV } },
  {
    name: 'workspace key (empty project and environment ids)',
    dekId: DEK_ID_2,
    dekVersion: 1,
    scope: { workspaceId: WS, projectId: '', environmentId: '' },
  },
  {
    name: 'large version, multibyte scope',
    dekId: DEK_ID_2,
    dekVersion: 0xffffffff,
    scope: { workspaceId: 'wś', projectId: 'prøject', environmentId: 'prod—eu' },
  },
]

interface LocalWrapInput extends DekAadInput {
  rootKey: string
  nonce: string
  dek: string
}

const LOCAL_WRAP_INPUTS: LocalWrapInput[] = [
  {
    ...(DEK_AAD_INPUTS[0] as DekAadInput),
    name: 'local wrap of a project/environment key',
    rootKey: KEY_NIST,
    nonce: 'cafebabefacedbaddecaf888',
    dek: KEY_SEQ,
  },
  {
    ...(DEK_AAD_INPUTS[2] as DekAadInput),
    name: 'local wrap of a workspace key',
    rootKey: KEY_HASH,
    nonce: '000000000000000000000001',
    dek: KEY_NIST,
  },
]

// ---- independent reference implementation of the documented layout

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(n)
  return b
}
const lpRef = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s, 'utf8')), Buffer.from(s, 'utf8')])
const uuidBytes = (id: string): Buffer => Buffer.from(id.replaceAll('-', ''), 'hex')

function refEnvelope(v: EnvelopeInput): { aad: Buffer; ciphertext: Buffer } {
  const header = Buffer.concat([Buffer.of(0x01, 0x01), uuidBytes(v.dekId), u32(v.dekVersion)])
  const b = v.binding
  const aad = Buffer.concat([
    Buffer.from('coffer/v1', 'utf8'),
    header,
    lpRef(b.workspaceId),
    lpRef(b.projectId),
    lpRef(b.environmentId),
    lpRef(b.recordId),
    u64(b.recordVersion),
    lpRef(b.field),
  ])
  const nonce = Buffer.from(v.nonce, 'hex')
  const c = createCipheriv('aes-256-gcm', Buffer.from(v.dekKey, 'hex'), nonce, { authTagLength: 16 })
  c.setAAD(aad)
  const body = Buffer.concat([c.update(Buffer.from(v.plaintext, 'hex')), c.final()])
  return { aad, ciphertext: Buffer.concat([header, nonce, body, c.getAuthTag()]) }
}

function refDekAad(v: DekAadInput): Buffer {
  return Buffer.concat([
    Buffer.from('coffer/dek/v1', 'utf8'),
    uuidBytes(v.dekId),
    u64(BigInt(v.dekVersion)),
    lpRef(v.scope.workspaceId),
    lpRef(v.scope.projectId),
    lpRef(v.scope.environmentId),
  ])
}

function refLocalWrap(v: LocalWrapInput): Buffer {
  const nonce = Buffer.from(v.nonce, 'hex')
  const c = createCipheriv('aes-256-gcm', Buffer.from(v.rootKey, 'hex'), nonce, { authTagLength: 16 })
  c.setAAD(refDekAad(v))
  const body = Buffer.concat([c.update(Buffer.from(v.dek, 'hex')), c.final()])
  return Buffer.concat([Buffer.of(0x01), nonce, body, c.getAuthTag()])
}

// ---- build, cross-check against src/crypto, write

function fail(what: string): never {
  throw new Error(`src/crypto disagrees with the reference layout: ${what}`)
}

async function build(): Promise<string> {
  const envelope = ENVELOPE_INPUTS.map((v) => {
    const ref = refEnvelope(v)
    const dek = { id: v.dekId, version: v.dekVersion, key: Buffer.from(v.dekKey, 'hex') }
    const binding: Binding = v.binding
    const sealed = seal(dek, Buffer.from(v.plaintext, 'hex'), binding, Buffer.from(v.nonce, 'hex'))
    if (!sealed.equals(ref.ciphertext)) fail(`seal, vector "${v.name}"`)
    if (!associatedData(sealed.subarray(0, 22), binding).equals(ref.aad)) fail(`associatedData, vector "${v.name}"`)
    if (!open(dek, sealed, binding).equals(Buffer.from(v.plaintext, 'hex'))) fail(`open, vector "${v.name}"`)
    return {
      name: v.name,
      dekKey: v.dekKey,
      dekId: v.dekId,
      dekVersion: v.dekVersion,
      binding: { ...v.binding, recordVersion: v.binding.recordVersion.toString() },
      nonce: v.nonce,
      plaintext: v.plaintext,
      aad: ref.aad.toString('hex'),
      ciphertext: ref.ciphertext.toString('hex'),
    }
  })
  const dekAad = DEK_AAD_INPUTS.map((v) => {
    const aad = refDekAad(v)
    if (!dataKeyAad(v.dekId, v.dekVersion, v.scope).equals(aad)) fail(`dataKeyAad, vector "${v.name}"`)
    return { name: v.name, dekId: v.dekId, dekVersion: v.dekVersion, scope: v.scope, aad: aad.toString('hex') }
  })
  const localWrap = []
  for (const v of LOCAL_WRAP_INPUTS) {
    const wrapped = refLocalWrap(v)
    const provider = new LocalFileKeyProvider(Buffer.from(v.rootKey, 'hex'))
    const dek = await provider.unwrap(wrapped, dataKeyAad(v.dekId, v.dekVersion, v.scope))
    if (!dek.equals(Buffer.from(v.dek, 'hex'))) fail(`LocalFileKeyProvider.unwrap, vector "${v.name}"`)
    await provider.close()
    localWrap.push({
      name: v.name,
      rootKey: v.rootKey,
      dekId: v.dekId,
      dekVersion: v.dekVersion,
      scope: v.scope,
      dek: v.dek,
      nonce: v.nonce,
      aad: refDekAad(v).toString('hex'),
      wrapped: wrapped.toString('hex'),
    })
  }
  const doc = {
    comment:
      'GENERATED by scripts/gen-envelope-vectors.ts; do not edit by hand. Fields: test/vectors/README.md. All keys are public test values.',
    format: 'coffer ciphertext v1 (AES-256-GCM)',
    envelope,
    dataKeyAad: dekAad,
    localWrap,
  }
  return `${JSON.stringify(doc, null, 2)}\n`
}

const text = await build()
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(OUT_FILE, 'utf8')
  } catch {
    // a missing file is stale
  }
  if (current !== text) {
    console.error(`${OUT_FILE} is stale: run node --import tsx scripts/gen-envelope-vectors.ts`)
    process.exitCode = 1
  } else {
    console.log(`${OUT_FILE} is current`)
  }
} else {
  writeFileSync(OUT_FILE, text)
  console.log(`wrote ${OUT_FILE}`)
}
