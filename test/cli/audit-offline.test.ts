// The audit log as a verifier outside the server checks it: `coffer audit verify` against a
// real server (remembering the checkpoint and key it saw), exports and inclusion proofs
// checked with no server, tampered files, a server whose key changed, and a history rewritten
// perfectly by an attacker with the database file but without the signing key.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import BetterSqlite3 from 'better-sqlite3'
import { rowToRecord } from '../../src/audit/audit-log.js'
import { formatCheckpoint, generateNoteKey, signNote } from '../../src/audit/checkpoint.js'
import { chainHash, entryBytes, GENESIS_HASH } from '../../src/audit/entry.js'
import { CompactRange, leafHash, type TreeNode } from '../../src/audit/merkle.js'
import type { AuditExport, InclusionProofFile } from '../../src/audit/offline.js'
import { CofferClient } from '../../src/client/client.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')
const CODE = /\(ERR_AUDIT_CHAIN_BROKEN\)/

/** npm test (scripts/test.mjs) builds the bundle once before any test runs. */
function ensureBuilt(): void {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
}

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer audit: signed checkpoints, exports and proofs (SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-audit-cli-'))
  const dataDir = join(work, 'data')
  const dbFile = join(dataDir, 'coffer.db')
  const files = join(work, 'files')
  let server: ChildProcess | undefined
  let url = ''
  let port = 0
  let token = ''
  let wsId = ''
  let publicKey = ''
  /** A machine's remembered checkpoints live under XDG_STATE_HOME; each test machine has its own. */
  const stateHome = (name: string) => join(work, 'state', name)
  const stateFile = (name: string) => join(stateHome(name), 'coffer', 'audit-checkpoints.json')

  const env = (extra: Record<string, string> = {}) => {
    const e: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL' && k !== 'XDG_STATE_HOME') e[k] = v
    e.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent'
    return { ...e, COFFER_URL: url, COFFER_TOKEN: token, NO_COLOR: '1', XDG_STATE_HOME: stateHome('default'), ...extra }
  }
  const coffer = (args: string[], extra: Record<string, string> = {}): Result => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env: env(extra), input: '', encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (args: string[], extra?: Record<string, string>): Result => {
    const r = coffer(args, extra)
    assert.equal(r.status, 0, `coffer ${args.slice(0, 3).join(' ')} exited ${r.status}: ${r.stderr.slice(0, 600)}`)
    return r
  }
  /** Exit 2 with the stable code and a message naming the problem. */
  const broken = (args: string[], problem: RegExp, extra?: Record<string, string>): Result => {
    const r = coffer(args, extra)
    assert.equal(r.status, 2, `coffer ${args.slice(0, 3).join(' ')} should fail with exit 2, got ${r.status}: ${r.stderr.slice(0, 600)}`)
    assert.match(r.stderr, CODE)
    assert.match(r.stderr, problem)
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one-line error')
    return r
  }
  /** Offline: no server and no token, so nothing but the file can be used. */
  const OFFLINE = { COFFER_URL: 'http://127.0.0.1:9', COFFER_TOKEN: '' }
  const api = () => new CofferClient({ url, token })

  async function startServer(onPort: number): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'server', '--data-dir', dataDir, '--port', String(onPort)], {
      env: { ...env(), COFFER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    server = child
    url = await new Promise<string>((resolve, reject) => {
      let buf = ''
      const t = setTimeout(() => reject(new Error(`server did not start: ${buf}`)), 15_000)
      child.stderr!.on('data', (d: Buffer) => {
        buf += d.toString()
        const m = /listening on (http:\/\/[^\s]+)/.exec(buf)
        if (m) {
          clearTimeout(t)
          resolve(m[1]!)
        }
      })
      child.on('exit', (code) => reject(new Error(`server exited ${code}: ${buf}`)))
    })
    port = Number(new URL(url).port)
  }
  async function stopServer(): Promise<void> {
    const s = server
    if (s && s.exitCode === null && s.signalCode === null) {
      const exited = new Promise((r) => s.once('exit', r))
      s.kill('SIGTERM')
      await exited
    }
    server = undefined
  }

  const readExport = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as AuditExport
  const writeJson = (name: string, value: unknown) => {
    const f = join(files, name)
    writeFileSync(f, JSON.stringify(value, null, 1))
    return f
  }

  before(async () => {
    ensureBuilt()
    mkdirSync(files, { recursive: true })
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'auditor@example.com', '--workspace', 'Acme', '--json'],
      { encoding: 'utf8', env: env() },
    )
    assert.equal(init.status, 0, init.stderr)
    token = (JSON.parse(init.stdout) as { token: string }).token
    await startServer(0)
    wsId = (await api().me()).workspace.id
    publicKey = await api().auditPublicKey()
    // Changes and reveals to audit.
    ok(['projects', 'create', 'Shop'])
    for (let i = 0; i < 6; i++)
      ok(['secrets', 'set', `K${i}=${randomBytes(8).toString('hex')}`, '--project', 'shop', '--env', 'development'])
    ok(['secrets', 'set', 'K0=again', '--project', 'shop', '--env', 'development'])
    ok(['secrets', 'get', 'K1', '--project', 'shop', '--env', 'development'])
    ok(['secrets', 'list', '--reveal', '--project', 'shop', '--env', 'development'])
  })

  after(async () => {
    await stopServer()
    rmSync(work, { recursive: true, force: true })
  })

  test('audit verify passes twice; the second run extends the checkpoint the first remembered', () => {
    const machine = { XDG_STATE_HOME: stateHome('a') }
    const first = ok(['audit', 'verify'], machine)
    assert.match(first.stderr, /Audit chain OK/)
    assert.match(first.stderr, /Checkpoint OK/)
    assert.match(first.stderr, /first verification on this machine/)
    const saved = JSON.parse(readFileSync(stateFile('a'), 'utf8')) as Record<
      string,
      { publicKey: string; treeSize: number; rootHash: string }
    >
    const seen = saved[`${url} ${wsId}`]
    assert.ok(seen, 'the checkpoint is remembered per server and workspace')
    assert.equal(seen.publicKey, publicKey, 'the key is pinned on first use')
    assert.ok(seen.treeSize >= 10)
    assert.equal(statSync(stateFile('a')).mode & 0o077, 0, 'the state file is private')

    const second = ok(['audit', 'verify'], machine)
    assert.match(second.stderr, new RegExp(`extends the checkpoint of ${seen.treeSize} entries`))
    const again = (JSON.parse(readFileSync(stateFile('a'), 'utf8')) as typeof saved)[`${url} ${wsId}`]!
    assert.ok(again.treeSize > seen.treeSize, 'the newer checkpoint is remembered')
    assert.equal(again.publicKey, publicKey)
  })

  test('an export verifies offline with the published key, and without it only unpinned', () => {
    const f = join(files, 'export.json')
    ok(['audit', 'export', '--out', f])
    assert.equal(statSync(f).mode & 0o077, 0, 'the export is private')
    const exp = readExport(f)
    assert.equal(exp.format, 'coffer-audit-export/v1')
    assert.equal(exp.workspace.id, wsId)
    assert.equal(exp.publicKey, publicKey)
    assert.ok(exp.entries.length > exp.checkpoint.treeSize - 1 && exp.checkpoint.treeSize >= 10)

    const pinned = ok(['audit', 'verify', '--file', f, '--public-key', publicKey], OFFLINE)
    assert.match(pinned.stderr, /verifies/)
    assert.doesNotMatch(pinned.stderr, /key inside the file/)
    const keyFile = join(files, 'audit.pub')
    writeFileSync(keyFile, `${publicKey}\n`)
    ok(['audit', 'verify', '--file', f, '--public-key', keyFile], OFFLINE)

    const unpinned = ok(['audit', 'verify', '--file', f], OFFLINE)
    assert.match(unpinned.stderr, /verifies/)
    assert.match(unpinned.stderr, /key inside the file/, 'says the signer was not pinned')
    assert.match(unpinned.stderr, /--public-key/)
  })

  test('tampered exports fail with exit 2 and a message naming the problem', () => {
    const good = readExport(join(files, 'export.json'))
    const clone = () => structuredClone(good)
    const size = good.checkpoint.treeSize
    const rechain = (exp: AuditExport, from: number) => {
      let prev: Buffer = from === 0 ? GENESIS_HASH : Buffer.from(exp.entries[from - 1]!.hash, 'hex')
      for (const e of exp.entries.slice(from)) {
        e.prevHash = prev.toString('hex')
        prev = chainHash(prev, entryBytes(e))
        e.hash = prev.toString('hex')
      }
    }
    const noteLines = (note: string) => note.split('\n')
    const cases: Array<[string, (exp: AuditExport) => void, RegExp]> = [
      [
        'an edited action',
        (exp) => {
          exp.entries[2]!.action = 'secret.delete'
        },
        /hash chain breaks at entry 3: its content does not match its hash/,
      ],
      [
        'edited details',
        (exp) => {
          exp.entries[4]!.details = '{}'
        },
        /hash chain breaks at entry 5: its content does not match its hash/,
      ],
      [
        'a deleted entry',
        (exp) => {
          exp.entries.splice(3, 1)
        },
        /hash chain breaks at entry 5: entry 4 is missing/,
      ],
      [
        'two entries reordered',
        (exp) => {
          ;[exp.entries[3], exp.entries[4]] = [exp.entries[4]!, exp.entries[3]!]
        },
        /hash chain breaks at entry 5: entry 4 is missing/,
      ],
      [
        "two entries' contents swapped (sequence numbers kept)",
        (exp) => {
          const [a, b] = [exp.entries[3]!, exp.entries[4]!]
          exp.entries[3] = { ...b, seq: 4 }
          exp.entries[4] = { ...a, seq: 5 }
        },
        /hash chain breaks at entry 4/,
      ],
      [
        'an edit with the whole chain recomputed',
        (exp) => {
          exp.entries[2]!.action = 'secret.read'
          rechain(exp, 2)
        },
        /do not hash to the signed root/,
      ],
      [
        'signed entries cut off (chain intact)',
        (exp) => {
          exp.entries.splice(size - 2)
        },
        new RegExp(`covers ${size} entries but the file verifies only ${size - 2}`),
      ],
      [
        'the root in the signed note changed',
        (exp) => {
          const lines = noteLines(exp.checkpoint.note)
          lines[2] = randomBytes(32).toString('base64')
          exp.checkpoint.note = lines.join('\n')
        },
        /checkpoint signature does not verify/,
      ],
      [
        'the size in the signed note changed',
        (exp) => {
          const lines = noteLines(exp.checkpoint.note)
          lines[1] = String(size - 1)
          exp.checkpoint.note = lines.join('\n')
        },
        /checkpoint signature does not verify/,
      ],
      [
        'the stated root changed beside an intact note',
        (exp) => {
          exp.checkpoint.rootHash = randomBytes(32).toString('base64')
        },
        /rootHash differs from the signed note/,
      ],
      [
        'the stated size changed beside an intact note',
        (exp) => {
          exp.checkpoint.treeSize = size + 5
        },
        /treeSize or rootHash differs from the signed note/,
      ],
      [
        'an entry moved in from another workspace',
        (exp) => {
          exp.entries[1]!.workspaceId = '00000000-0000-4000-8000-000000000000'
        },
        /entry 2 belongs to another workspace/,
      ],
      [
        'a hash that is not hex text',
        (exp) => {
          ;(exp.entries[3] as { hash: unknown }).hash = 12
        },
        /hash chain breaks at entry 4: its content does not match its hash/,
      ],
      [
        'a previous hash of the wrong length',
        (exp) => {
          exp.entries[3]!.prevHash = exp.entries[3]!.prevHash.slice(2)
        },
        /hash chain breaks at entry 4: its previous hash does not match/,
      ],
      [
        'the signature line removed',
        (exp) => {
          exp.checkpoint.note = exp.checkpoint.note.replace(/\n\n.*\n$/s, '\n\n')
        },
        /checkpoint signature does not verify/,
      ],
    ]
    for (const [what, tamper, problem] of cases) {
      const exp = clone()
      tamper(exp)
      const f = writeJson('tampered.json', exp)
      broken(['audit', 'verify', '--file', f, '--public-key', publicKey], problem, OFFLINE)
      broken(['audit', 'verify', '--file', f], problem, OFFLINE)
      assert.ok(what)
    }
    // The intact copy written the same way still verifies (the failures are the tampering),
    // and so does one whose hashes are spelt in uppercase hex.
    ok(['audit', 'verify', '--file', writeJson('intact.json', clone()), '--public-key', publicKey], OFFLINE)
    const upper = clone()
    for (const e of upper.entries) Object.assign(e, { prevHash: e.prevHash.toUpperCase(), hash: e.hash.toUpperCase() })
    ok(['audit', 'verify', '--file', writeJson('upper.json', upper), '--public-key', publicKey], OFFLINE)
    // Not an export at all.
    const notJson = join(files, 'not.json')
    writeFileSync(notJson, 'not json')
    assert.equal(coffer(['audit', 'verify', '--file', notJson], OFFLINE).status, 1)
    broken(
      ['audit', 'verify', '--file', writeJson('other.json', { format: 'something-else' })],
      /not a coffer-audit-export\/v1 file/,
      OFFLINE,
    )
  })

  test('an export checked with another key, or forged and signed by the forger, fails once the key is pinned', () => {
    const good = readExport(join(files, 'export.json'))
    const other = generateNoteKey('coffer-audit')
    broken(
      ['audit', 'verify', '--file', join(files, 'export.json'), '--public-key', other.verifierKey],
      /checkpoint signature does not verify/,
      OFFLINE,
    )
    broken(
      ['audit', 'verify', '--file', join(files, 'export.json'), '--public-key', other.verifierKey],
      /another public key than the trusted one/,
      OFFLINE,
    )

    // A forger rewrites the log, recomputes the chain and tree, and signs with a key of his own.
    const forged = structuredClone(good)
    forged.entries[2]!.action = 'secret.read'
    let prev: Buffer = GENESIS_HASH
    const range = new CompactRange()
    for (const e of forged.entries) {
      e.prevHash = prev.toString('hex')
      prev = chainHash(prev, entryBytes(e))
      e.hash = prev.toString('hex')
      if (range.size < forged.checkpoint.treeSize) range.append(leafHash(entryBytes(e)))
    }
    const root = range.root()
    forged.checkpoint.note = signNote(
      formatCheckpoint({ origin: `coffer/audit/${wsId}`, treeSize: range.size, rootHash: root }),
      other.signerKey,
    )
    forged.checkpoint.rootHash = Buffer.from(root).toString('base64')
    forged.publicKey = other.verifierKey
    const f = writeJson('forged.json', forged)
    // Taking the key from the file proves only that the file is consistent: it says so.
    assert.match(ok(['audit', 'verify', '--file', f], OFFLINE).stderr, /key inside the file/)
    broken(['audit', 'verify', '--file', f, '--public-key', publicKey], /checkpoint signature does not verify/, OFFLINE)
  })

  test('an inclusion proof file verifies offline; tampered proofs fail', async () => {
    const entries = (await api().auditEntries('acme', 0, 5000)).entries
    const target = entries.find((e) => e.action === 'secret.reveal')!
    assert.ok(target, 'a reveal to prove')
    const f = join(files, 'proof.json')
    assert.match(ok(['audit', 'proof', target.id, '--out', f]).stderr, /Inclusion proof of entry/)
    const p = JSON.parse(readFileSync(f, 'utf8')) as InclusionProofFile
    assert.equal(p.format, 'coffer-audit-proof/v1')
    assert.equal(p.entry.id, target.id)
    assert.equal(p.leafIndex, target.seq - 1)
    assert.equal(p.publicKey, publicKey)
    assert.ok(p.proof.length > 0)
    assert.match(ok(['audit', 'verify-proof', f], OFFLINE).stderr, /verifies/)
    ok(['audit', 'verify-proof', f, '--public-key', publicKey], OFFLINE)
    // By sequence number, to stdout.
    const bySeq = JSON.parse(ok(['audit', 'proof', '3']).stdout) as InclusionProofFile
    assert.equal(bySeq.entry.seq, 3)
    ok(['audit', 'verify-proof', writeJson('proof-3.json', bySeq), '--public-key', publicKey], OFFLINE)
    assert.notEqual(coffer(['audit', 'proof', 'not-an-entry']).status, 0)

    const cases: Array<[string, (q: InclusionProofFile) => void, RegExp]> = [
      [
        'a flipped proof byte',
        (q) => {
          const b = Buffer.from(q.proof[0]!, 'base64')
          b[7]! ^= 0x01
          q.proof[0] = b.toString('base64')
        },
        /inclusion proof does not verify/,
      ],
      [
        'a proof hash dropped',
        (q) => {
          q.proof.pop()
        },
        /inclusion proof does not verify/,
      ],
      [
        'an edited entry',
        (q) => {
          q.entry.action = 'secret.read'
        },
        /inclusion proof does not verify/,
      ],
      [
        'edited entry details',
        (q) => {
          q.entry.details = '{"key":"OTHER"}'
        },
        /inclusion proof does not verify/,
      ],
      [
        'another leaf index',
        (q) => {
          q.leafIndex += 1
        },
        /inclusion proof does not verify/,
      ],
      [
        'another tree size',
        (q) => {
          q.treeSize -= 1
        },
        /another tree size than the checkpoint/,
      ],
      [
        'the root in the signed note changed',
        (q) => {
          const lines = q.checkpoint.note.split('\n')
          lines[2] = randomBytes(32).toString('base64')
          q.checkpoint.note = lines.join('\n')
        },
        /checkpoint signature does not verify/,
      ],
      [
        'the stated root changed beside an intact note',
        (q) => {
          q.checkpoint.rootHash = randomBytes(32).toString('base64')
        },
        /differs from the signed note/,
      ],
    ]
    for (const [what, tamper, problem] of cases) {
      const q = structuredClone(p)
      tamper(q)
      const tf = writeJson('proof-tampered.json', q)
      broken(['audit', 'verify-proof', tf, '--public-key', publicKey], problem, OFFLINE)
      broken(['audit', 'verify-proof', tf], problem, OFFLINE)
      assert.ok(what)
    }
    const other = generateNoteKey('coffer-audit').verifierKey
    broken(['audit', 'verify-proof', f, '--public-key', other], /checkpoint signature does not verify/, OFFLINE)
  })

  test('a server whose audit key changed fails verification on a machine that pinned the old key', async () => {
    const machine = { XDG_STATE_HOME: stateHome('a') }
    ok(['audit', 'verify'], machine)
    const oldKey = publicKey
    await stopServer()
    // Whoever controls the database makes the server generate a new signing key.
    const db = new BetterSqlite3(dbFile)
    const gone = db.prepare("DELETE FROM meta WHERE key IN ('audit_signer_key', 'audit_verifier_key')").run()
    db.close()
    assert.equal(gone.changes, 2)
    await startServer(port)
    publicKey = await api().auditPublicKey()
    assert.notEqual(publicKey, oldKey, 'the restarted server made a new key')

    const r = broken(['audit', 'verify'], /signing key changed/, machine)
    assert.ok(r.stderr.includes(oldKey) && r.stderr.includes(publicKey), 'names both keys')
    // The machine keeps its pin: the change is reported again, not accepted silently.
    broken(['audit', 'verify'], /signing key changed/, machine)
    const saved = JSON.parse(readFileSync(stateFile('a'), 'utf8')) as Record<string, { publicKey: string }>
    assert.equal(saved[`${url} ${wsId}`]!.publicKey, oldKey)
    // Exports signed with the old key still verify with it, and not with the new one.
    ok(['audit', 'verify', '--file', join(files, 'export.json'), '--public-key', oldKey], OFFLINE)
    broken(
      ['audit', 'verify', '--file', join(files, 'export.json'), '--public-key', publicKey],
      /checkpoint signature does not verify/,
      OFFLINE,
    )
  })

  test('a rewritten history is caught by the machine that saw the old checkpoint', async () => {
    const machine = { XDG_STATE_HOME: stateHome('b') }
    ok(['audit', 'verify'], machine)
    ok(['audit', 'verify'], machine)
    const seen = (JSON.parse(readFileSync(stateFile('b'), 'utf8')) as Record<string, { treeSize: number; rootHash: string }>)[
      `${url} ${wsId}`
    ]!
    const entriesBefore = (await api().auditEntries('acme', 0, 5000)).entries

    // The attacker has the database file but not the signing key. He drops the guards, rewrites
    // an old entry, recomputes every later chain hash, rebuilds the Merkle tree and the head, and
    // deletes the checkpoints that no longer match (he cannot sign replacements).
    const db = new BetterSqlite3(dbFile)
    db.pragma('busy_timeout = 5000')
    for (const t of ['audit_entries', 'audit_nodes', 'audit_checkpoints']) {
      db.exec(`DROP TRIGGER IF EXISTS ${t}_no_update`)
      db.exec(`DROP TRIGGER IF EXISTS ${t}_no_delete`)
    }
    const target = db
      .prepare("SELECT seq FROM audit_entries WHERE workspace_id = ? AND action = 'secret.reveal' ORDER BY seq LIMIT 1")
      .get(wsId) as { seq: number }
    assert.ok(target.seq < seen.treeSize, 'the rewritten entry is covered by the checkpoint the machine saw')
    db.transaction(() => {
      db.prepare("UPDATE audit_entries SET action = 'secret.read' WHERE workspace_id = ? AND seq = ?").run(wsId, target.seq)
      const rows = db.prepare('SELECT * FROM audit_entries WHERE workspace_id = ? ORDER BY seq').all(wsId) as Parameters<
        typeof rowToRecord
      >[0][]
      let prev: Buffer = GENESIS_HASH
      const range = new CompactRange()
      const nodes: TreeNode[] = []
      const fix = db.prepare('UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE workspace_id = ? AND seq = ?')
      for (const row of rows) {
        const bytes = entryBytes(rowToRecord(row))
        const hash = chainHash(prev, bytes)
        fix.run(prev, hash, wsId, row.seq)
        nodes.push(...range.append(leafHash(bytes)))
        prev = hash
      }
      db.prepare('DELETE FROM audit_nodes WHERE workspace_id = ?').run(wsId)
      const insert = db.prepare('INSERT INTO audit_nodes (workspace_id, level, idx, hash) VALUES (?, ?, ?, ?)')
      for (const n of nodes) insert.run(wsId, n.level, n.index, Buffer.from(n.hash))
      const peaks = Buffer.concat(range.peaks().map((p) => p.hash))
      db.prepare('UPDATE audit_heads SET hash = ?, peaks = ? WHERE workspace_id = ?').run(prev, peaks, wsId)
      db.prepare('DELETE FROM audit_checkpoints WHERE workspace_id = ?').run(wsId)
    })()
    db.close()

    // The forgery is perfect as far as the server can tell.
    const entriesAfter = (await api().auditEntries('acme', 0, 5000)).entries
    assert.equal(entriesAfter.length, entriesBefore.length)
    assert.notEqual(entriesAfter[target.seq - 1]!.hash, entriesBefore[target.seq - 1]!.hash, 'history was rewritten')
    assert.equal((await api().auditCheckpoint('acme')).checkpoint, null, 'the old checkpoints are gone')
    const serverSide = await api().issueAuditCheckpoint('acme')
    assert.ok(serverSide.checkpoint.treeSize > seen.treeSize)

    // The machine that saw the old checkpoint demands a consistency proof and cannot get one.
    broken(['audit', 'verify'], new RegExp(`does not extend the checkpoint of ${seen.treeSize} entries.*history was rewritten`), machine)
    broken(['audit', 'verify'], /does not extend the checkpoint/, machine)
    // An export taken before the rewrite still proves what the log said, offline.
    const old = readExport(join(files, 'export.json'))
    assert.equal(old.entries[target.seq - 1]!.action, 'secret.reveal')
  })
})
