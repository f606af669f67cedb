// The export file: written one entry per line, verified on worker threads in runs, with
// exactly the verdict verifyExport gives on one thread — for an intact file and for every
// kind of tampering, and for the same JSON laid out another way.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { formatCheckpoint, generateNoteKey, signNote } from '../../src/audit/checkpoint.js'
import { chainHash, entryBytes, GENESIS_HASH, type AuditRecord } from '../../src/audit/entry.js'
import { verifyExportFile, writeExportFile } from '../../src/audit/export-file.js'
import { CompactRange, leafHash } from '../../src/audit/merkle.js'
import { originOf, verifyExport, type AuditExport, type ExportedEntry } from '../../src/audit/offline.js'
import { VerifyWorkers } from '../../src/audit/verify-workers.js'

const N = 100
const RUN = 8

function makeExport(treeSize: number): { exp: AuditExport; key: string } {
  const ws = randomUUID()
  const entries: ExportedEntry[] = []
  const range = new CompactRange()
  let prev: Buffer = GENESIS_HASH
  let root = range.root()
  for (let seq = 1; seq <= N; seq++) {
    const r: AuditRecord = {
      workspaceId: ws,
      seq,
      id: randomUUID(),
      time: new Date(1_700_000_000_000 + seq).toISOString(),
      actor: { type: 'user', id: randomUUID(), ip: '127.0.0.1', userAgent: 'test/1 "quoted" é' },
      requestId: randomUUID(),
      action: 'secret.update',
      target: { type: 'secret', id: `KEY_${seq}` },
      details: JSON.stringify({ key: `KEY_${seq}`, n: seq }),
    }
    const bytes = entryBytes(r)
    const hash = chainHash(prev, bytes)
    range.push(leafHash(bytes))
    if (seq === treeSize) root = range.root()
    entries.push({ ...r, prevHash: prev.toString('hex'), hash: hash.toString('hex') })
    prev = hash
  }
  const key = generateNoteKey('coffer-audit')
  const note = signNote(formatCheckpoint({ origin: originOf(ws), treeSize, rootHash: root }), key.signerKey)
  return {
    exp: {
      format: 'coffer-audit-export/v1',
      workspace: { id: ws, slug: 'w' },
      exportedAt: new Date().toISOString(),
      publicKey: key.verifierKey,
      checkpoint: { treeSize, rootHash: Buffer.from(root).toString('base64'), note },
      entries,
    },
    key: key.verifierKey,
  }
}

describe('export files verified on worker threads', () => {
  let dir: string
  let pool: VerifyWorkers
  let runs = 0
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-export-'))
    pool = new VerifyWorkers(2)
    const run = pool.run.bind(pool)
    pool.run = async (tasks) => {
      runs++
      return run(tasks)
    }
  })
  after(async () => {
    await pool.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('an intact file verifies on the threads, with a checkpoint ending inside a run', async () => {
    const { exp, key } = makeExport(N - 5)
    const file = join(dir, 'intact.json')
    writeExportFile(file, exp)
    const text = readFileSync(file, 'utf8')
    assert.deepEqual(JSON.parse(text), exp, 'the file is the export as JSON')
    assert.equal(text.split('\n').length, N + 3, 'a header line, one line per entry, the closing line')
    const before = runs
    const r = await verifyExportFile(file, key, pool, RUN)
    assert.equal(runs, before + 1, 'the threads verified it')
    assert.deepEqual(r, verifyExport(exp, key))
    assert.equal(r.ok, true)
    assert.equal(r.chain.checked, N)
  })

  const cases: Array<[string, (e: ExportedEntry[]) => void]> = [
    [
      'an edited action inside a run',
      (e) => {
        e[37]!.action = 'secret.delete'
      },
    ],
    [
      'an edited first entry of a run',
      (e) => {
        e[40]!.details = '{}'
      },
    ],
    [
      'a deleted entry',
      (e) => {
        e.splice(50, 1)
      },
    ],
    [
      'two entries swapped across runs',
      (e) => {
        ;[e[47], e[48]] = [e[48]!, e[47]!]
      },
    ],
    [
      'an entry of another workspace',
      (e) => {
        e[60]!.workspaceId = randomUUID()
      },
    ],
    [
      'a recomputed hash that breaks the next link',
      (e) => {
        e[55]!.hash = randomBytes(32).toString('hex')
      },
    ],
    [
      'entries cut off below the checkpoint',
      (e) => {
        e.splice(80)
      },
    ],
  ]
  for (const [label, tamper] of cases) {
    test(label, async () => {
      const { exp, key } = makeExport(N - 5)
      tamper(exp.entries)
      const file = join(dir, 'tampered.json')
      writeExportFile(file, exp)
      const want = verifyExport(JSON.parse(JSON.stringify(exp)) as AuditExport, key)
      assert.equal(want.ok, false)
      assert.deepEqual(await verifyExportFile(file, key, pool, RUN), want)
    })
  }

  test('the same JSON laid out another way, or a wrong key, gets the one-thread verdict', async () => {
    const { exp, key } = makeExport(N)
    const file = join(dir, 'pretty.json')
    writeFileSync(file, JSON.stringify(exp, null, 2))
    assert.deepEqual(await verifyExportFile(file, key, pool, RUN), verifyExport(exp, key))
    writeExportFile(file, exp)
    const other = generateNoteKey('coffer-audit').verifierKey
    const r = await verifyExportFile(file, other, pool, RUN)
    assert.equal(r.ok, false)
    assert.deepEqual(r, verifyExport(exp, other))
  })
})

describe('the CLI’s file-only threads (exportFilesOnly)', () => {
  test('verify an export as the database threads do, and read no database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coffer-export-'))
    const pool = new VerifyWorkers(2, { exportFilesOnly: true })
    try {
      const { exp, key } = makeExport(N - 5)
      const file = join(dir, 'intact.json')
      writeExportFile(file, exp)
      assert.deepEqual(await verifyExportFile(file, key, pool, RUN), verifyExport(exp, key))
      const [r] = await pool.run([
        { source: { engine: 'sqlite', path: join(dir, 'none.db') }, workspaceId: 'w', fromSeq: 1, toSeq: 1, treeLeaves: 1 },
      ])
      assert.equal(r?.ok, false)
      assert.equal(r?.error, 'this thread reads export files only')
    } finally {
      await pool.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
