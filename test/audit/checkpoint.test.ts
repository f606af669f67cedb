import assert from 'node:assert/strict'
import { createHash, createPrivateKey, sign as cryptoSign } from 'node:crypto'
import { describe, test } from 'node:test'
import { inspect } from 'node:util'
import fc from 'fast-check'
import {
  CHECKPOINT_INVALID,
  CheckpointError,
  NOTE_MAX_BYTES,
  NOTE_MAX_SIGNATURES,
  formatCheckpoint,
  generateNoteKey,
  openCheckpoint,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifyCheckpoint,
} from '../../src/audit/checkpoint.js'

// ---- published vectors (copied as data only) ---------------------------------------------------

// Go, golang/mod: sumdb/note/note_test.go (TestNewVerifier, TestNewSigner, TestSign, TestOpen,
// TestVerifierList) and the package example in sumdb/note/note.go.
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop'
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n'
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n'
const GO_SIGNED = `${GO_TEXT}\n${PETER_SIG}`
// TestNewVerifier: "wrong length key, with adjusted key hash" and "unknown algorithm, with
// adjusted key hash".
const GO_BAD_LENGTH_VKEY = 'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='
const GO_BAD_ALG_VKEY = 'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'

// transparency-dev/formats: log/note_test.go (key pairs generated with Go's note.GenerateKey, and
// a real sum.golang.org checkpoint with the published sum.golang.org verifier key).
const TD_KEY_PAIRS: [string, string][] = [
  ['Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs', 'PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ'],
  [
    'Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH',
    'PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci',
  ],
  [
    'KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj',
    'PRIVATE+KEY+KnownAgain+4893b26c+ARhZda/l25zjGZswYLDZsLNRzNpmv5wYTN9IoTr1OJ2+',
  ],
  [
    'Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots',
    'PRIVATE+KEY+Unknown+fdbb2e08+Aav2knTC6orbhXX8pMWuNiWgO+Wwk2DB+h1eU2Q1W1nU',
  ],
]
const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8'
const SUMDB_ROOT_B64 = 'mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk='
const SUMDB_CHECKPOINT =
  `go.sum database tree\n6476701\n${SUMDB_ROOT_B64}\n\n` +
  '— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n'
// Same file (BenchmarkParse): witness signature lines over other keys, to be ignored.
const TD_OTHER_SIGS = [
  '— monkeys 202ffh9ve46Mqbhuyb4wnC2Pwdan5EsXQym/tF1ggXJqhjGosU4T5intH4iKMRgDLxrnXuIjRaU2NbvAnaepM6Y+8ww=\n',
  '— bananas z2OfE+2bbsBZ7NLgfuslc0v7NFW2QyexJ7fhePpoL2N/P7N/COd5S+JNHbQEAlYzz2C5sg0E+x/MggS1mDR6t3/9rQw=\n',
]

// C2SP/C2SP: tlog-checkpoint.md, the example checkpoint's body (its signing key is not published).
const C2SP_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n'

// ---- helpers ------------------------------------------------------------------------------------

const b64 = (s: string): Buffer => Buffer.from(s, 'base64')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Key ID computed here, independently of the module: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]. */
function independentKeyId(name: string, publicKey: Uint8Array): number {
  return createHash('sha256').update(name).update(Uint8Array.of(0x0a, 0x01)).update(publicKey).digest().readUInt32BE(0)
}

/**
 * A signature line made without the module (node:crypto directly), over arbitrary text bytes —
 * for notes the module itself would refuse to sign. keyIdOverride forges the key ID field.
 */
function rawSigLine(text: string | Uint8Array, skey: string, keyIdOverride?: number, nameOverride?: string): string {
  const parts = skey.split('+')
  const name = nameOverride ?? (parts[2] as string)
  const seed = b64(parts.slice(4).join('+')).subarray(1)
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const signature = cryptoSign(null, typeof text === 'string' ? Buffer.from(text, 'utf8') : text, key)
  const id = Buffer.alloc(4)
  id.writeUInt32BE(keyIdOverride ?? Number.parseInt(parts[3] as string, 16), 0)
  return `— ${name} ${Buffer.concat([id, signature]).toString('base64')}\n`
}

/** text ‖ blank line ‖ a raw signature line, for any text (even one signNote refuses). */
function rawSigned(text: string, skey: string): string {
  return `${text}\n${rawSigLine(text, skey)}`
}

function isInvalid(e: unknown): boolean {
  return (
    e instanceof CheckpointError &&
    e.code === CHECKPOINT_INVALID &&
    e.code === 'ERR_CHECKPOINT_INVALID' &&
    e.message === 'The signed checkpoint is invalid.'
  )
}

/** The note must not open, with the one generic error, and verifyCheckpoint must say null. */
function assertInvalid(note: string | Uint8Array, vkey: string, message?: string): void {
  assert.throws(() => openCheckpoint(note, vkey), isInvalid, message)
  assert.equal(verifyCheckpoint(note, vkey), null, message)
}

function assertTypeError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof TypeError && pattern.test(e.message), `expected TypeError matching ${pattern}`)
}

const ROOT = new Uint8Array(32).map((_, i) => i * 7 + 1)
const ROOT_B64 = Buffer.from(ROOT).toString('base64')

const A = generateNoteKey('coffer.example/audit/ws_a')
const B = generateNoteKey('coffer.example/audit/ws_b')
const A_TWIN = generateNoteKey('coffer.example/audit/ws_a') // same name as A, another key

// ---- 1. known answers ---------------------------------------------------------------------------

describe('known-answer vectors', () => {
  test('Go sumdb/note: the PeterNeumann verifier key parses to key ID c74f20a3', () => {
    const k = parseVerifierKey(PETER_VKEY)
    assert.equal(k.name, 'PeterNeumann')
    assert.equal(k.keyId, 0xc74f20a3)
    assert.deepEqual(k.publicKey, new Uint8Array(b64('ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').subarray(1)))
    assert.equal(independentKeyId('PeterNeumann', k.publicKey), 0xc74f20a3)
    assert.equal(k.verifierKey, PETER_VKEY)
    assert.equal(parseVerifierKey(ENOCH_VKEY).keyId, 0xaf0cfe78)
  })

  test('Go sumdb/note: the PeterNeumann signer key derives the published verifier key', () => {
    const s = parseSignerKey(PETER_SKEY)
    assert.equal(s.name, 'PeterNeumann')
    assert.equal(s.keyId, 0xc74f20a3)
    assert.equal(s.verifierKey, PETER_VKEY)
  })

  test('Go sumdb/note: signing the example text gives exactly the published signed note', () => {
    assert.equal(signNote(GO_TEXT, PETER_SKEY), GO_SIGNED)
    assert.equal(signNote(GO_TEXT, parseSignerKey(PETER_SKEY)), GO_SIGNED)
    assert.equal(signNote(GO_TEXT, [PETER_SKEY]), GO_SIGNED)
    assert.equal(rawSigLine(GO_TEXT, PETER_SKEY), PETER_SIG) // the test helper agrees too
  })

  test('Go sumdb/note: the published notes open (TestOpen)', () => {
    assert.deepEqual(openNote(GO_SIGNED, PETER_VKEY), { text: GO_TEXT })
    assert.deepEqual(openNote(Buffer.from(GO_SIGNED), parseVerifierKey(PETER_VKEY)), { text: GO_TEXT })
    // One known and one unknown signature: the unknown one is ignored; either key opens it.
    const both = `${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`
    assert.equal(openNote(both, PETER_VKEY).text, GO_TEXT)
    assert.equal(openNote(both, ENOCH_VKEY).text, GO_TEXT)
    // Duplicated verified and unverified signatures (Go accepts this note; so does the spec).
    const enochABCD = `${ENOCH_SIG.slice(0, 60)}ABCD${ENOCH_SIG.slice(60)}`
    assert.equal(openNote(`${GO_TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${enochABCD}`, PETER_VKEY).text, GO_TEXT)
    // Only an unknown key's signature: nothing verifies.
    assert.throws(() => openNote(`${GO_TEXT}\n${ENOCH_SIG}`, PETER_VKEY), isInvalid)
  })

  test('Go sumdb/note: the published bad notes do not open (TestOpen)', () => {
    const bad = [
      GO_TEXT,
      `${GO_TEXT}\n`,
      `${GO_TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\x01${GO_TEXT}\n${PETER_SIG}`,
      `${GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${GO_TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${GO_TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`, // invalid signature
      `${GO_TEXT}\n${PETER_SIG.replaceAll('PeterNeumann', 'CarmenSandiego')}`, // other name, same ID
      `${GO_TEXT}\n${PETER_SIG.replaceAll('x08g', 'xxxx')}`, // same name, other key ID
      `${GO_TEXT}\n${PETER_SIG.repeat(NOTE_MAX_SIGNATURES + 1)}`, // too many signatures
    ]
    for (const note of bad) assert.throws(() => openNote(note, PETER_VKEY), isInvalid, JSON.stringify(note))
    const xff = Buffer.concat([Buffer.of(0xff), Buffer.from(`${GO_TEXT}\n${PETER_SIG}`)])
    assert.throws(() => openNote(xff, PETER_VKEY), isInvalid)
    // ... and exactly NOTE_MAX_SIGNATURES copies of a good one are fine.
    assert.equal(openNote(`${GO_TEXT}\n${PETER_SIG.repeat(NOTE_MAX_SIGNATURES)}`, PETER_VKEY).text, GO_TEXT)
  })

  test('Go sumdb/note: every substring and every byte+1 mangling of the keys is rejected (TestNewVerifier, TestNewSigner)', () => {
    for (const [key, parse] of [
      [PETER_VKEY, parseVerifierKey],
      [PETER_SKEY, parseSignerKey],
    ] as const) {
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i === 0 && j === key.length) continue
          assert.throws(() => parse(key.slice(i, j)), TypeError, key.slice(i, j))
        }
      }
      for (let i = 0; i < key.length; i++) {
        const mangled = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1)
        assert.throws(() => parse(mangled), TypeError, mangled)
      }
    }
    // Go's decoder accepts the non-zero padding bits of …BADKEY== and then rejects the length;
    // ours already rejects the non-canonical base64.
    assertTypeError(() => parseVerifierKey(GO_BAD_LENGTH_VKEY), /base64|32 bytes/)
    assertTypeError(() => parseVerifierKey(GO_BAD_ALG_VKEY), /algorithm/)
  })

  test('transparency-dev/formats: each published signer key derives its published verifier key', () => {
    for (const [vkey, skey] of TD_KEY_PAIRS) {
      const v = parseVerifierKey(vkey)
      const s = parseSignerKey(skey)
      assert.equal(s.verifierKey, vkey)
      assert.equal(s.keyId, v.keyId)
      assert.equal(independentKeyId(v.name, v.publicKey), v.keyId)
      const note = signNote(formatCheckpoint({ origin: 'TestParseCheckpoint', treeSize: 42, rootHash: ROOT }), skey)
      assert.equal(openCheckpoint(note, vkey).treeSize, 42n)
    }
  })

  test('transparency-dev/formats: the published sum.golang.org checkpoint opens', () => {
    const expected = {
      origin: 'go.sum database tree',
      treeSize: 6476701n,
      rootHash: new Uint8Array(b64(SUMDB_ROOT_B64)),
      extensions: [],
      body: `go.sum database tree\n6476701\n${SUMDB_ROOT_B64}\n`,
    }
    assert.deepEqual({ ...openCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY) }, expected)
    assert.deepEqual({ ...openCheckpoint(Buffer.from(SUMDB_CHECKPOINT), parseVerifierKey(SUMDB_VKEY)) }, expected)
    assert.equal(openCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, { origin: 'go.sum database tree' }).treeSize, 6476701n)
    assert.throws(() => openCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, { origin: 'Go rocks but I might have the wrong ID' }), isInvalid)
    assert.equal(verifyCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, { origin: 'sum.golang.org' }), null)
    // Witness signatures by other keys (BenchmarkParse) are ignored.
    assert.equal(openCheckpoint(SUMDB_CHECKPOINT + TD_OTHER_SIGS.join(''), SUMDB_VKEY).treeSize, 6476701n)
    // Re-formatting the parsed fields gives the signed body back.
    assert.equal(formatCheckpoint(openCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY)), expected.body)
    // And it is not signed by any other key.
    assertInvalid(SUMDB_CHECKPOINT, PETER_VKEY)
  })

  test('C2SP tlog-checkpoint: formatting the spec example gives its body', () => {
    assert.equal(
      formatCheckpoint({
        origin: 'example.com/behind-the-sofa',
        treeSize: 20852163,
        rootHash: b64('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I='),
      }),
      C2SP_BODY,
    )
    assert.equal(
      formatCheckpoint({
        origin: 'example.com/behind-the-sofa',
        treeSize: 20852163n,
        rootHash: new Uint8Array(b64('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=')),
      }),
      C2SP_BODY,
    )
  })
})

// ---- 2. round trip and tampering ----------------------------------------------------------------

/** A line allowed as origin or extension: non-empty, well-formed, no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: filters out the control characters a note line may not hold
const lineArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }).filter((s) => !/[\x00-\x1F]/.test(s) && !/\p{Cs}/u.test(s))
const fieldsArb = fc.record({
  origin: lineArb,
  treeSize: fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.nat(),
    fc.constantFrom(0, 0n, (1n << 64n) - 1n, Number.MAX_SAFE_INTEGER),
  ),
  rootHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  extensions: fc.array(lineArb, { maxLength: 3 }),
})

describe('round trip', () => {
  test('formatCheckpoint → signNote → openCheckpoint gives the fields back', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const body = formatCheckpoint(f)
        const note = signNote(body, A.signerKey)
        for (const input of [note, Buffer.from(note, 'utf8'), new Uint8Array(Buffer.from(note, 'utf8'))]) {
          const cp = openCheckpoint(input, A.verifierKey, { origin: f.origin })
          assert.equal(cp.origin, f.origin)
          assert.equal(cp.treeSize, BigInt(f.treeSize))
          assert.deepEqual(cp.rootHash, new Uint8Array(f.rootHash))
          assert.deepEqual([...cp.extensions], f.extensions)
          assert.equal(cp.body, body)
          assert.equal(formatCheckpoint(cp), body)
        }
      }),
      { numRuns: 200 },
    )
  })

  test('the opened checkpoint is a copy: changing it changes nothing', () => {
    const note = signNote(formatCheckpoint({ origin: 'o', treeSize: 1, rootHash: ROOT }), A.signerKey)
    const cp = openCheckpoint(note, A.verifierKey)
    cp.rootHash.fill(0)
    assert.deepEqual(openCheckpoint(note, A.verifierKey).rootHash, ROOT)
    assert.ok(Object.isFrozen(cp))
  })

  test('the body is signed as-is: tree size 0 and 2^64 - 1, extensions', () => {
    for (const treeSize of [0, 0n, (1n << 64n) - 1n]) {
      const body = formatCheckpoint({ origin: 'log', treeSize, rootHash: ROOT })
      assert.equal(body, `log\n${treeSize}\n${ROOT_B64}\n`)
      assert.equal(openCheckpoint(signNote(body, A.signerKey), A.verifierKey).treeSize, BigInt(treeSize))
    }
    const withExt = formatCheckpoint({ origin: 'log', treeSize: 5, rootHash: ROOT, extensions: ['ext one', 'ext — two'] })
    assert.equal(withExt, `log\n5\n${ROOT_B64}\next one\next — two\n`)
    assert.deepEqual(openCheckpoint(signNote(withExt, A.signerKey), A.verifierKey).extensions, ['ext one', 'ext — two'])
  })
})

describe('tampering', () => {
  const noteArb = fieldsArb.map((f) => Buffer.from(signNote(formatCheckpoint(f), A.signerKey), 'utf8'))

  test('any single-bit flip in the note makes it fail to open', () => {
    fc.assert(
      fc.property(noteArb, fc.nat(), (bytes, n) => {
        const bit = n % (bytes.length * 8)
        const tampered = Buffer.from(bytes)
        tampered[bit >> 3] = (tampered[bit >> 3] as number) ^ (1 << (bit & 7))
        assertInvalid(tampered, A.verifierKey)
      }),
      { numRuns: 500 },
    )
  })

  test('every single-bit flip of one fixed note fails (exhaustive)', () => {
    const bytes = Buffer.from(
      signNote(formatCheckpoint({ origin: 'coffer.example/audit/ws_a', treeSize: 12345, rootHash: ROOT, extensions: ['x'] }), A.signerKey),
    )
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const tampered = Buffer.from(bytes)
      tampered[bit >> 3] = (tampered[bit >> 3] as number) ^ (1 << (bit & 7))
      assert.equal(verifyCheckpoint(tampered, A.verifierKey), null, `bit ${bit}`)
    }
    assert.equal(verifyCheckpoint(bytes, A.verifierKey)?.treeSize, 12345n)
  })

  test('any byte replaced, deleted or inserted makes it fail to open', () => {
    fc.assert(
      fc.property(noteArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, n, delta) => {
        const i = n % bytes.length
        const replaced = Buffer.from(bytes)
        replaced[i] = ((replaced[i] as number) + delta) & 0xff
        assertInvalid(replaced, A.verifierKey, 'replaced')
        assertInvalid(Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]), A.verifierKey, 'deleted')
        const j = n % (bytes.length + 1)
        assertInvalid(Buffer.concat([bytes.subarray(0, j), Buffer.of(delta), bytes.subarray(j)]), A.verifierKey, 'inserted')
      }),
      { numRuns: 300 },
    )
  })

  test('any string edit of the note text makes it fail to open', () => {
    fc.assert(
      fc.property(noteArb, fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), (bytes, n, insert) => {
        const note = bytes.toString('utf8')
        const i = n % (note.length + 1)
        assertInvalid(note.slice(0, i) + insert + note.slice(i), A.verifierKey)
        // Replacing a character by itself is no edit (seed -2079744145 found that case).
        const replaced = note.slice(0, i) + insert + note.slice(i + 1)
        if (i < note.length && replaced !== note) assertInvalid(replaced, `${A.verifierKey}`)
      }),
      { numRuns: 300 },
    )
  })

  test('arbitrary input never opens and never throws anything but CheckpointError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array()), (input) => {
        assertInvalid(input, A.verifierKey)
      }),
    )
    for (const junk of [undefined, null, 42, {}, [], new Uint16Array(4)]) {
      assert.throws(() => openCheckpoint(junk as unknown as string, A.verifierKey), isInvalid)
      assert.equal(verifyCheckpoint(junk as unknown as string, A.verifierKey), null)
    }
  })
})

describe('keys and signatures', () => {
  const body = formatCheckpoint({ origin: 'coffer.example/audit/ws_a', treeSize: 7, rootHash: ROOT })
  const note = signNote(body, A.signerKey)

  test('a note opens only with the verifier key of the signer', () => {
    assert.equal(openCheckpoint(note, A.verifierKey).treeSize, 7n)
    assertInvalid(note, B.verifierKey) // other name, other key
    assertInvalid(note, A_TWIN.verifierKey) // same name, other key (other key ID)
    assertInvalid(note, PETER_VKEY)
  })

  test('a key ID mismatch is an unknown key, not a match', () => {
    const aKeyId = parseVerifierKey(A.verifierKey).keyId
    // Right name, valid signature by the right key, but another key ID in the line.
    assertInvalid(`${body}\n${rawSigLine(body, A.signerKey, (aKeyId ^ 1) >>> 0)}`, A.verifierKey)
    // Right key ID, valid signature, but another name in the line.
    assertInvalid(`${body}\n${rawSigLine(body, A.signerKey, undefined, 'coffer.example/audit/ws_x')}`, A.verifierKey)
    // The same signature under A's own name and ID opens.
    assert.equal(openCheckpoint(`${body}\n${rawSigLine(body, A.signerKey)}`, A.verifierKey).treeSize, 7n)
  })

  test('extra signatures by unknown keys are ignored, before or after', () => {
    const both = signNote(body, [B.signerKey, A.signerKey])
    assert.equal(openCheckpoint(both, A.verifierKey).treeSize, 7n)
    assert.equal(openCheckpoint(both, B.verifierKey).treeSize, 7n)
    assertInvalid(both, A_TWIN.verifierKey)
    const unknownGarbage = `— witness.example/w ${Buffer.from('this is not a signature at all').toString('base64')}\n`
    assert.equal(openCheckpoint(`${note}${unknownGarbage}`, A.verifierKey).treeSize, 7n)
    assert.equal(openCheckpoint(`${body}\n${unknownGarbage}${note.slice(body.length + 1)}`, A.verifierKey).treeSize, 7n)
    // An A_TWIN signature (same name as A, other key ID) next to A's is ignored too.
    assert.equal(openCheckpoint(signNote(body, [A_TWIN.signerKey, A.signerKey]), A.verifierKey).treeSize, 7n)
  })

  test('every signature by the verifier key must verify; duplicates of a good one are accepted', () => {
    const line = note.slice(body.length + 1)
    assert.equal(openCheckpoint(`${note}${line}`, A.verifierKey).treeSize, 7n)
    const otherBody = formatCheckpoint({ origin: 'coffer.example/audit/ws_a', treeSize: 8, rootHash: ROOT })
    const goodForOther = signNote(otherBody, A.signerKey).slice(otherBody.length + 1)
    assertInvalid(`${note}${goodForOther}`, A.verifierKey)
    assertInvalid(`${body}\n${goodForOther}${line}`, A.verifierKey)
    // A line by the verifier key whose signature has the wrong length.
    const short = `— ${parseVerifierKey(A.verifierKey).name} ${b64(line.slice(line.lastIndexOf(' ') + 1))
      .subarray(0, 67)
      .toString('base64')}\n`
    assertInvalid(`${note}${short}`, A.verifierKey)
  })

  test('signNote refuses duplicate signers and empty signer lists', () => {
    assertTypeError(() => signNote(body, [A.signerKey, A.signerKey]), /twice/)
    assertTypeError(() => signNote(body, [A.signerKey, parseSignerKey(A.signerKey)]), /twice/)
    assertTypeError(() => signNote(body, []), /signers/)
  })
})

describe('strict checkpoint syntax', () => {
  const K = A.signerKey
  const V = A.verifierKey
  const cp = (size: string, root = ROOT_B64, origin = 'log', rest = ''): string => `${origin}\n${size}\n${root}\n${rest}`

  test('tree sizes must be canonical decimal in [0, 2^64 - 1]', () => {
    for (const size of ['0', '1', '10', '18446744073709551615']) {
      assert.equal(openCheckpoint(signNote(cp(size), K), V).treeSize, BigInt(size))
    }
    for (const size of [
      '01',
      '00',
      '-1',
      '-0',
      '+1',
      '1.0',
      '1e3',
      ' 1',
      '1 ',
      '0x10',
      '١',
      'one',
      '18446744073709551616',
      '99999999999999999999',
      '184467440737095516150',
    ]) {
      assertInvalid(signNote(cp(size), K), V, size)
    }
  })

  test('root hashes must be exactly 32 bytes of canonical padded standard base64', () => {
    const r32 = Buffer.alloc(32, 0xfb)
    assert.deepEqual(openCheckpoint(signNote(cp('1', r32.toString('base64')), K), V).rootHash, new Uint8Array(r32))
    const bad = [
      Buffer.alloc(31, 1).toString('base64'),
      Buffer.alloc(33, 1).toString('base64'),
      Buffer.alloc(0).toString('base64') || 'x',
      r32.toString('base64').replace(/=$/, ''), // unpadded
      `${r32.toString('base64url')}=`, // URL-safe alphabet
      r32.toString('base64').replace(/.=$/, (m) => `${String.fromCharCode(m.charCodeAt(0) + 1)}=`), // non-zero padding bits
      ` ${r32.toString('base64')}`,
      r32.toString('hex'),
    ]
    for (const root of bad) assertInvalid(signNote(cp('1', root), K), V, root)
  })

  test('structure: at least three non-empty lines, a final newline and a blank line before the signatures', () => {
    const good = cp('1')
    const line = signNote(good, K).slice(good.length + 1)
    assert.equal(openCheckpoint(`${good}\n${line}`, V).treeSize, 1n)
    assertInvalid(`${good}${line}`, V, 'missing blank line')
    assertInvalid(`${good}\n${line.slice(0, -1)}`, V, 'missing final newline')
    assertInvalid(`${good}\n${line}\n`, V, 'trailing blank line')
    assertInvalid(`${good}\n\n${line}`, V, 'two blank lines')
    assertInvalid(`${good}\n`, V, 'no signatures')
    assertInvalid(signNote('log\n1\n', K), V, 'two lines')
    assertInvalid(signNote(`\n1\n${ROOT_B64}\n`, K), V, 'empty origin')
    assertInvalid(signNote(cp('1', ROOT_B64, 'log', '\next\n'), K), V, 'empty extension line')
    assertInvalid(signNote(cp('1', ROOT_B64, 'log', 'ext\n\n'), K), V, 'trailing empty line')
    assertInvalid(signNote('not a checkpoint\n', K), V, 'one line')
    const variants = [
      line.replace('— ', '- '), // hyphen, not em dash
      line.replace('— ', '—'), // no space after the dash
      line.replace('— ', '—  '), // two spaces
      line.replace(/ (\S+)\n$/, '  $1\n'), // two spaces before the signature
      line.replace(/\n$/, ' \n'), // trailing space
      line.replace(/\n$/, '\r\n'), // CRLF
      line.replace(/ \S+\n$/, '\n'), // no signature
      line.replace(/=\n$/, '\n'), // unpadded signature
    ]
    for (const v of variants) assertInvalid(`${good}\n${v}`, V, JSON.stringify(v))
  })

  test('control characters, bad UTF-8 and lone surrogates are rejected even when signed', () => {
    for (const origin of ['lo\rg', 'lo\tg', 'lo\x00g', 'lo\x1bg', 'lo\x0bg', 'lo\fg']) {
      assertInvalid(rawSigned(cp('1', ROOT_B64, origin), K), V, JSON.stringify(origin))
    }
    // DEL and C1 controls are not "ASCII control characters below U+0020": the spec allows them.
    assert.equal(openCheckpoint(rawSigned(cp('1', ROOT_B64, 'lo\x7fg\u0085'), K), V).origin, 'lo\x7fg\u0085')
    for (const badByte of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const text = Buffer.concat([Buffer.from('lo'), Buffer.from(badByte), Buffer.from(`g\n1\n${ROOT_B64}\n`)])
      const bytes = Buffer.concat([text, Buffer.from('\n'), Buffer.from(rawSigLine(text, K))])
      assertInvalid(bytes, V, Buffer.from(badByte).toString('hex'))
    }
    // A leading byte-order mark is text like any other: kept, and signed.
    const bom = signNote(cp('1', ROOT_B64, '\uFEFFlog'), K)
    assert.equal(openCheckpoint(Buffer.from(bom, 'utf8'), V).origin, '\uFEFFlog')
    assert.equal(openCheckpoint(bom, V).origin, '\uFEFFlog')
    // A string with a lone surrogate has no UTF-8 encoding.
    const good = signNote(cp('1', ROOT_B64, 'log'), K)
    assertInvalid(good.replace('log', 'lo\uD800g'), V)
    assertInvalid(`${good}— x \uDC00AAAAAA==\n`, V)
  })

  test('notes over NOTE_MAX_BYTES are rejected; a note of exactly NOTE_MAX_BYTES opens', () => {
    const probeText = cp('1', ROOT_B64, 'log', 'x\n')
    const sigLength = Buffer.byteLength(signNote(probeText, K)) - Buffer.byteLength(probeText)
    const fill = (extra: number): string =>
      cp('1', ROOT_B64, 'log', `${'x'.repeat(NOTE_MAX_BYTES - Buffer.byteLength(probeText) - sigLength + 1 + extra)}\n`)
    const exact = signNote(fill(0), K)
    assert.equal(Buffer.byteLength(exact), NOTE_MAX_BYTES)
    assert.equal(openCheckpoint(exact, V).extensions.length, 1)
    assert.equal(openCheckpoint(Buffer.from(exact), V).extensions.length, 1)
    assertTypeError(() => signNote(fill(1), K), /too large/)
    const over = rawSigned(fill(1), K)
    assert.equal(Buffer.byteLength(over), NOTE_MAX_BYTES + 1)
    assertInvalid(over, V)
    assertInvalid(Buffer.from(over), V)
    // Multi-byte characters count as their UTF-8 length.
    const wide = rawSigned(cp('1', ROOT_B64, 'log', `${'é'.repeat(NOTE_MAX_BYTES / 2)}\n`), K)
    assert.ok(wide.length < NOTE_MAX_BYTES)
    assertInvalid(wide, V)
  })

  test('too many signature lines are rejected before any is checked', () => {
    const body = cp('1')
    const mine = signNote(body, K).slice(body.length + 1)
    const other = `— other.example ${Buffer.alloc(68, 1).toString('base64')}\n`
    assert.equal(openCheckpoint(`${body}\n${other.repeat(NOTE_MAX_SIGNATURES - 1)}${mine}`, V).treeSize, 1n)
    assertInvalid(`${body}\n${other.repeat(NOTE_MAX_SIGNATURES)}${mine}`, V)
  })

  test('signatures by unknown keys must still be well-formed lines', () => {
    const body = cp('1')
    const note = signNote(body, K)
    for (const other of [
      `— other+name ${Buffer.alloc(68, 1).toString('base64')}\n`, // '+' in name
      `— other\u00a0name ${Buffer.alloc(68, 1).toString('base64')}\n`, // Unicode space in name
      `— other ${Buffer.alloc(4, 1).toString('base64')}\n`, // fewer than 5 bytes
      `— other ${Buffer.alloc(68, 1).toString('base64url')}!\n`, // not base64
      '— other \n',
      '— \n',
    ]) {
      assertInvalid(`${note}${other}`, V, JSON.stringify(other))
    }
  })

  test('openCheckpoint and verifyCheckpoint agree', () => {
    const note = signNote(cp('3'), K)
    assert.deepEqual(verifyCheckpoint(note, V), openCheckpoint(note, V))
    assert.equal(verifyCheckpoint(note, B.verifierKey), null)
  })
})

// ---- 3. keys and argument checks ------------------------------------------------------------------

describe('note keys', () => {
  test('generateNoteKey gives a matching, parseable pair in Go format', () => {
    const { signerKey, verifierKey } = generateNoteKey('coffer.example/audit/ws_1')
    assert.match(verifierKey, /^coffer\.example\/audit\/ws_1\+[0-9a-f]{8}\+AQ?[A-Za-z0-9+/]{42,43}=?$/)
    assert.match(signerKey, /^PRIVATE\+KEY\+coffer\.example\/audit\/ws_1\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/)
    const v = parseVerifierKey(verifierKey)
    const s = parseSignerKey(signerKey)
    assert.equal(v.verifierKey, verifierKey)
    assert.equal(s.verifierKey, verifierKey)
    assert.equal(s.keyId, v.keyId)
    assert.deepEqual(s.publicKey, v.publicKey)
    assert.equal(independentKeyId(v.name, v.publicKey), v.keyId)
    assert.equal(signerKey.split('+')[3], verifierKey.split('+')[1])
    assert.notEqual(generateNoteKey('coffer.example/audit/ws_1').signerKey, signerKey)
  })

  test('vkey and skey round trip through parse (and hex case is normalised)', () => {
    fc.assert(
      fc.property(
        // biome-ignore lint/suspicious/noControlCharactersInRegex: filters out the control characters a key name may not hold
        fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }).filter((s) => !/[\s+\x00-\x1F]|\p{White_Space}|\p{Cs}/u.test(s)),
        (name) => {
          const pair = generateNoteKey(name)
          const v = parseVerifierKey(pair.verifierKey)
          assert.equal(v.name, name)
          assert.equal(parseVerifierKey(v.verifierKey).verifierKey, pair.verifierKey)
          assert.equal(parseSignerKey(pair.signerKey).verifierKey, pair.verifierKey)
        },
      ),
      { numRuns: 50 },
    )
    const upper = PETER_VKEY.replace('c74f20a3', 'C74F20A3')
    assert.equal(parseVerifierKey(upper).verifierKey, PETER_VKEY)
    assert.equal(openNote(GO_SIGNED, upper).text, GO_TEXT)
  })

  test('parsed keys are frozen and expose no key material', () => {
    const s = parseSignerKey(PETER_SKEY)
    assert.ok(Object.isFrozen(s))
    const seedB64 = PETER_SKEY.split('+').slice(4).join('+')
    const seedHex = b64(seedB64).subarray(1).toString('hex')
    const shown = inspect(s, { showHidden: true, depth: 5 }) + JSON.stringify(s)
    assert.ok(!shown.includes(seedB64) && !shown.includes(seedHex) && !shown.includes('PRIVATE'))
    s.publicKey.fill(0) // a copy
    assert.equal(signNote(GO_TEXT, s), GO_SIGNED)
  })

  test('generateNoteKey refuses invalid names', () => {
    for (const name of ['', 'a b', 'a+b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u2028b', 'a\u3000b', 'a\x00b', 'a\uD800b']) {
      assertTypeError(() => generateNoteKey(name), /^name /)
    }
    assertTypeError(() => generateNoteKey(5 as unknown as string), /^name must be a string/)
  })

  test('malformed verifier keys throw TypeError naming the problem', () => {
    const data = PETER_VKEY.split('+').slice(2).join('+')
    const cases: [unknown, RegExp][] = [
      [42, /^verifierKey must be a/],
      ['PeterNeumann', /form/],
      ['PeterNeumann+c74f20a3', /form/],
      [`+c74f20a3+${data}`, /name/],
      [`Peter Neumann+c74f20a3+${data}`, /name/],
      [`PeterNeumann+c74f20a+${data}`, /8 hex/],
      [`PeterNeumann+0xc74f20a3+${data}`, /8 hex/],
      [`PeterNeumann+c74f20ag+${data}`, /8 hex/],
      ['PeterNeumann+c74f20a3+not base64!', /base64/],
      [`PeterNeumann+c74f20a3+${data.replace(/=*$/, '')} `, /base64/],
      [`PeterNeumann+c74f20a4+${data}`, /key ID does not match/],
      [`PeterNeumanN+c74f20a3+${data}`, /key ID does not match/],
      [GO_BAD_LENGTH_VKEY, /base64/],
      [`PeterNeumann+c74f20a3+${Buffer.concat([Buffer.of(1), Buffer.alloc(33, 9)]).toString('base64')}`, /32 bytes/],
      [GO_BAD_ALG_VKEY, /algorithm/],
      [PETER_SKEY, /signer \(private\) key/],
    ]
    for (const [vkey, pattern] of cases) {
      assertTypeError(() => parseVerifierKey(vkey as string), pattern)
      assertTypeError(() => openCheckpoint(SUMDB_CHECKPOINT, vkey as string), pattern)
      assertTypeError(() => verifyCheckpoint(SUMDB_CHECKPOINT, vkey as string), pattern)
    }
  })

  test('malformed signer keys throw TypeError naming the problem, never echoing the key', () => {
    const [, , , hash, ...rest] = PETER_SKEY.split('+')
    const data = rest.join('+')
    const otherSeed = Buffer.concat([Buffer.of(1), Buffer.alloc(32, 9)]).toString('base64')
    const cases: [unknown, RegExp][] = [
      [undefined, /^signerKey must be a/],
      [PETER_VKEY, /PRIVATE\+KEY/],
      [PETER_SKEY.replace('PRIVATE+KEY', 'private+key'), /PRIVATE\+KEY/],
      ['PRIVATE+KEY+PeterNeumann', /form/],
      [`PRIVATE+KEY+Peter Neumann+${hash}+${data}`, /name/],
      [`PRIVATE+KEY+PeterNeumann+${hash}0+${data}`, /8 hex/],
      [`PRIVATE+KEY+PeterNeumann+${hash}+${otherSeed}`, /key ID does not match/],
      [`PRIVATE+KEY+PeterNeumann+${hash}+${Buffer.concat([Buffer.of(2), Buffer.alloc(32, 9)]).toString('base64')}`, /algorithm/],
      [`PRIVATE+KEY+PeterNeumann+${hash}+${Buffer.concat([Buffer.of(1), Buffer.alloc(64, 9)]).toString('base64')}`, /32 bytes/],
      [`PRIVATE+KEY+PeterNeumann+${hash}+${data.slice(0, -1)}`, /base64/],
    ]
    for (const [skey, pattern] of cases) {
      for (const fn of [() => parseSignerKey(skey as string), () => signNote(GO_TEXT, skey as string)]) {
        assert.throws(fn, (e: unknown) => {
          assert.ok(e instanceof TypeError, String(e))
          assert.match(e.message, pattern)
          assert.ok(!e.message.includes(data) && !e.message.includes(data.slice(4, 40)), 'the message echoes key material')
          return true
        })
      }
    }
    assertTypeError(() => signNote(GO_TEXT, [PETER_SKEY, 'nope']), /^signers\[1\] must start with PRIVATE\+KEY/)
  })

  test('only key objects made by the parse functions are accepted', () => {
    const v = parseVerifierKey(PETER_VKEY)
    const s = parseSignerKey(PETER_SKEY)
    assertTypeError(
      () => openCheckpoint(SUMDB_CHECKPOINT, { ...v }),
      /^verifierKey must be a verifier key string or a key returned by parseVerifierKey/,
    )
    assertTypeError(() => openNote(GO_SIGNED, s as unknown as string), /^verifierKey must be/)
    assertTypeError(() => signNote(GO_TEXT, { ...s }), /^signerKey must be a signer key string or a key returned by parseSignerKey/)
    assertTypeError(() => signNote(GO_TEXT, v as unknown as string), /^signerKey must be/)
  })
})

describe('argument checks', () => {
  const ok = { origin: 'log', treeSize: 1, rootHash: ROOT }

  test('formatCheckpoint names the bad field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, origin: '' }, /^origin must not be empty/],
      [{ ...ok, origin: 'a\nb' }, /^origin must be one line/],
      [{ ...ok, origin: 'a\rb' }, /^origin must be one line/],
      [{ ...ok, origin: 'a\uDC00' }, /^origin must be one line/],
      [{ ...ok, origin: 7 }, /^origin must be a string/],
      [{ ...ok, treeSize: -1 }, /^treeSize/],
      [{ ...ok, treeSize: 1.5 }, /^treeSize/],
      [{ ...ok, treeSize: Number.NaN }, /^treeSize/],
      [{ ...ok, treeSize: 2 ** 53 }, /^treeSize/],
      [{ ...ok, treeSize: 1n << 64n }, /^treeSize/],
      [{ ...ok, treeSize: -1n }, /^treeSize/],
      [{ ...ok, treeSize: '5' }, /^treeSize/],
      [{ ...ok, rootHash: ROOT.subarray(1) }, /^rootHash must be a 32-byte Uint8Array/],
      [{ ...ok, rootHash: new Uint8Array(33) }, /^rootHash/],
      [{ ...ok, rootHash: [...ROOT] }, /^rootHash/],
      [{ ...ok, rootHash: ROOT_B64 }, /^rootHash/],
      [{ ...ok, extensions: 'x' }, /^extensions must be an array/],
      [{ ...ok, extensions: [''] }, /^extensions\[0\] must not be empty/],
      [{ ...ok, extensions: ['a', 'b\nc'] }, /^extensions\[1\]/],
    ]
    for (const [fields, pattern] of cases) assertTypeError(() => formatCheckpoint(fields as never), pattern)
    assertTypeError(() => formatCheckpoint(null as never), /^fields/)
    assert.equal(formatCheckpoint({ ...ok, rootHash: Buffer.from(ROOT) }), `log\n1\n${ROOT_B64}\n`)
  })

  test('signNote names the bad body', () => {
    for (const body of ['', 'no newline', 'a\r\n', 'a\x00\n', 'a\uD800\n', 5]) {
      assertTypeError(() => signNote(body as string, PETER_SKEY), /^body /)
    }
  })

  test('open options are checked', () => {
    assertTypeError(
      () => openCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, { origin: 5 as unknown as string }),
      /^options\.origin must be a string/,
    )
    assertTypeError(() => verifyCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, { origin: '' }), /^options\.origin must not be empty/)
    assertTypeError(() => verifyCheckpoint(SUMDB_CHECKPOINT, SUMDB_VKEY, 'x' as never), /^options must be an object/)
  })
})
