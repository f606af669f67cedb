// Three real `coffer server` processes on ONE PostgreSQL database, as a load-balanced
// deployment runs them: 1,000 concurrent audited writes spread over the nodes — 10 secrets,
// each written 100 times through all three nodes at once — must all succeed, lose no update,
// and leave one gap-free, unforked chain that every node verifies, whose Merkle root
// (recomputed here from the downloaded entries) is the one the signed checkpoint carries,
// and that every node serves the same checkpoint, key and proofs of. Writes of the same
// secret on several nodes are what once deadlocked (row lock, then chain lock).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { verifyCheckpoint } from '../../src/audit/checkpoint.js'
import { chainHash, entryBytes, GENESIS_HASH } from '../../src/audit/entry.js'
import { leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js'
import { originOf, type ExportedEntry } from '../../src/audit/offline.js'
import { verifyChain } from '../../src/audit/verify.js'
import { createTestDatabase } from '../helpers/pg.js'
import { describePostgres } from '../helpers/engines.js'
import { childEnv, request, stopChild, waitListening } from '../helpers/child-server.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')
const NODES = 3
const WRITES = 1000
const CONCURRENCY = 50
/** Secrets written; each gets WRITES / KEYS versions, written through every node. */
const KEYS = 10
/** workspace.create and token.create (bootstrap), then project.create. */
const BEFORE_WRITES = 3

const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')

function suite(): void {
  const work = mkdtempSync(join(tmpdir(), 'coffer-multi-'))
  const rootKey = randomBytes(32).toString('base64')
  const children: ChildProcess[] = []
  const agents: http.Agent[] = []
  const urls: string[] = []
  let dropDb: (() => Promise<void>) | undefined
  let dbUrl = ''
  let token = ''
  let ws = ''
  let wsId = ''
  // Last-resort cleanup if the runner itself is torn down before `after` runs.
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  process.once('exit', killAll)

  const call = (node: number, method: string, path: string, body?: unknown) =>
    request(urls[node]!, token, method, path, body, agents[node]!, 'coffer-multi-node-test')
  const A = () => `/v1/workspaces/${ws}/audit`
  /** Every entry of the workspace, downloaded page by page from `node`. */
  async function download(node: number): Promise<ExportedEntry[]> {
    const out: ExportedEntry[] = []
    let afterSeq = 0
    for (;;) {
      const r = await call(node, 'GET', `${A()}/entries?after=${afterSeq}&limit=5000`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      out.push(...(r.body.entries as ExportedEntry[]))
      if (r.body.next === null) return out
      afterSeq = r.body.next
    }
  }

  const secretIds = new Map<string, string>() // key → secret id, from the PUT answers
  const versions = new Map<string, number[]>() // key → versions the PUTs answered with
  let entries: ExportedEntry[] = []
  let checkpoint: { treeSize: number; rootHash: string; note: string; createdAt: string }
  let publicKey = ''

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
    const db = await createTestDatabase()
    dbUrl = db.url
    dropDb = db.drop
    const env = childEnv({
      DATABASE_URL: dbUrl,
      COFFER_ROOT_KEY: rootKey,
      COFFER_LOG_LEVEL: 'warn',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
    })
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', join(work, 'node0'), '--email', 'ops@example.com', '--workspace', 'Multi', '--json'],
      { encoding: 'utf8', env, timeout: 30_000 },
    )
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as {
      token: string
      database: string
      workspace: { slug: string; id: string }
      createdKeyFile: boolean
    }
    assert.equal(j.database, 'postgres')
    assert.equal(j.createdKeyFile, false, 'COFFER_ROOT_KEY is used, no key file')
    token = j.token
    ws = j.workspace.slug
    wsId = j.workspace.id
    for (let i = 0; i < NODES; i++) {
      children.push(
        spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, `node${i}`), '--host', '127.0.0.1', '--port', '0'], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
      )
      agents.push(new http.Agent({ keepAlive: true, maxSockets: Math.ceil(CONCURRENCY / NODES) + 2 }))
    }
    urls.push(...(await Promise.all(children.map((c, i) => waitListening(c, `node ${i + 1}`)))))
    assert.equal(new Set(urls).size, NODES)
  })

  after(async () => {
    const errors: unknown[] = []
    await Promise.all(children.map((c) => stopChild(c).catch((e: unknown) => errors.push(e))))
    process.removeListener('exit', killAll)
    for (const a of agents) a.destroy()
    if (dropDb) await dropDb().catch((e: unknown) => errors.push(e))
    rmSync(work, { recursive: true, force: true })
    if (errors.length) throw errors[0]
  })

  test(`${WRITES} concurrent audited writes of ${KEYS} secrets over ${NODES} nodes all answer 2xx, no update lost`, {
    timeout: 60_000,
  }, async () => {
    const p = await call(0, 'POST', `/v1/workspaces/${ws}/projects`, { name: 'Shop', slug: 'shop' })
    assert.equal(p.status, 201, JSON.stringify(p.body))
    const E = `/v1/workspaces/${ws}/projects/shop/environments/production`
    const failures: string[] = []
    const perNode = new Array<number>(NODES).fill(0)
    let next = 0
    const worker = async () => {
      while (next < WRITES) {
        const i = next++
        const node = i % NODES
        const key = `KEY_${String(i % KEYS).padStart(3, '0')}`
        try {
          const r = await call(node, 'PUT', `${E}/secrets/${key}`, { value: `value-${i}-${randomBytes(8).toString('hex')}` })
          if (r.status < 200 || r.status > 299)
            failures.push(`${key} on node ${node + 1}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
          else {
            perNode[node]!++
            assert.equal(r.body.secret.key, key)
            assert.equal(secretIds.get(key) ?? r.body.secret.id, r.body.secret.id, `${key} keeps its id`)
            secretIds.set(key, r.body.secret.id)
            versions.set(key, [...(versions.get(key) ?? []), r.body.secret.version])
          }
        } catch (err) {
          failures.push(`${key} on node ${node + 1}: ${(err as Error).message}`)
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    assert.deepEqual(failures, [], `${failures.length} writes failed`)
    assert.deepEqual(perNode, [334, 333, 333])
    assert.equal(secretIds.size, KEYS)
    // Each write made its own version: 1..WRITES/KEYS per secret, none twice (no lost update).
    const expected = Array.from({ length: WRITES / KEYS }, (_, v) => v + 1)
    for (const [key, vs] of versions)
      assert.deepEqual(
        [...vs].sort((a, b) => a - b),
        expected,
        `versions of ${key}`,
      )
  })

  test('the chain has one entry per write, gap-free, unforked, identical on every node', async () => {
    const all = await Promise.all(urls.map((_, n) => download(n)))
    entries = all[0]!
    for (let n = 1; n < NODES; n++) {
      assert.equal(all[n]!.length, entries.length, `node ${n + 1} serves as many entries as node 1`)
      assert.ok(
        all[n]!.every((e, i) => JSON.stringify(e) === JSON.stringify(entries[i])),
        `node ${n + 1} serves the same entries as node 1`,
      )
    }
    assert.equal(entries.length, BEFORE_WRITES + WRITES)
    // Gap-free 1..N, unique sequence numbers and ids, one workspace.
    for (const [i, e] of entries.entries()) assert.equal(e.seq, i + 1, 'seq runs 1..N without gaps')
    assert.equal(new Set(entries.map((e) => e.seq)).size, entries.length)
    assert.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'unique ids')
    assert.ok(entries.every((e) => e.workspaceId === wsId))
    // No fork: each prev_hash is the previous entry's hash, and each hash is recomputed here.
    let prev = Buffer.from(GENESIS_HASH).toString('hex')
    for (const e of entries) {
      assert.equal(e.prevHash, prev, `entry ${e.seq}: prev_hash is the hash of entry ${e.seq - 1}`)
      assert.equal(chainHash(unhex(e.prevHash), entryBytes(e)).toString('hex'), e.hash, `entry ${e.seq}: hash recomputed`)
      prev = e.hash
    }
    const chain = verifyChain(entries.map((e) => ({ ...e, prevHash: unhex(e.prevHash), hash: unhex(e.hash) })))
    assert.deepEqual(chain, { ok: true, checked: entries.length, head: prev })
    // One entry per successful PUT: per secret, in chain order, a create (0 → 1) then updates
    // 1 → 2, 2 → 3 …, naming the secret the PUTs answered with.
    assert.deepEqual(
      entries.slice(0, BEFORE_WRITES).map((e) => e.action),
      ['workspace.create', 'token.create', 'project.create'],
    )
    const writes = entries.slice(BEFORE_WRITES)
    assert.ok(writes.every((e) => e.target.type === 'secret'))
    assert.equal(writes.filter((e) => e.action === 'secret.create').length, KEYS)
    assert.equal(writes.filter((e) => e.action === 'secret.update').length, WRITES - KEYS)
    const steps = new Map<string, string[]>()
    for (const e of writes) {
      const d = JSON.parse(e.details) as { key: string; fromVersion: number; toVersion: number }
      assert.equal(e.target.id, secretIds.get(d.key), `entry ${e.seq} names the secret of ${d.key}`)
      assert.equal(e.action, d.fromVersion === 0 ? 'secret.create' : 'secret.update')
      steps.set(d.key, [...(steps.get(d.key) ?? []), `${d.fromVersion}→${d.toVersion}`])
    }
    const chainOfVersions = Array.from({ length: WRITES / KEYS }, (_, v) => `${v}→${v + 1}`)
    assert.equal(steps.size, KEYS)
    for (const [key, st] of steps) assert.deepEqual(st, chainOfVersions, `${key}: versions follow on in the chain`)
    // Every node verifies the chain on the server.
    for (let n = 0; n < NODES; n++) {
      const v = await call(n, 'GET', `${A()}/verify`)
      assert.equal(v.status, 200)
      assert.deepEqual(
        v.body,
        { ok: true, checked: entries.length, head: prev, pending: { count: 0, oldest: null } },
        `node ${n + 1} verifies the chain`,
      )
    }
  })

  test('a checkpoint signed on node 1 carries the independently recomputed root; every node serves it', async () => {
    assert.equal(entries.length, BEFORE_WRITES + WRITES, 'needs the previous test')
    const leaves = entries.map((e) => leafHash(entryBytes(e)))
    const root = b64(rootFromLeafHashes(leaves))
    const r = await call(0, 'POST', `${A()}/checkpoints`)
    assert.equal(r.status, 201, JSON.stringify(r.body))
    checkpoint = r.body.checkpoint
    publicKey = r.body.publicKey
    assert.equal(checkpoint.treeSize, entries.length)
    assert.equal(checkpoint.rootHash, root, 'signed root = root recomputed from the downloaded entries')
    const signed = verifyCheckpoint(checkpoint.note, publicKey, { origin: originOf(wsId) })
    assert.ok(signed, 'the checkpoint signature verifies with the published key')
    assert.equal(signed.treeSize, BigInt(entries.length))
    assert.equal(b64(signed.rootHash), root)
    for (let n = 0; n < NODES; n++) {
      const c = await call(n, 'GET', `${A()}/checkpoint`)
      assert.equal(c.status, 200)
      assert.deepEqual(c.body, { checkpoint, publicKey }, `node ${n + 1} serves the same checkpoint and key`)
      const k = await call(n, 'GET', '/v1/audit/public-key')
      assert.equal(k.body.publicKey, publicKey)
      // The checkpoint's own audit entry follows; the chain and the signed root verify everywhere.
      const v = await call(n, 'GET', `${A()}/verify`)
      assert.equal(v.body.ok, true, JSON.stringify(v.body))
      assert.equal(v.body.checked, entries.length + 1)
    }
  })

  test('inclusion and consistency proofs from every node verify against the checkpoint', async () => {
    assert.ok(checkpoint, 'needs the previous test')
    const root = unb64(checkpoint.rootHash)
    const size = checkpoint.treeSize
    const sample = new Set([1, 2, BEFORE_WRITES, BEFORE_WRITES + 1, 512, 513, 1000, size - 1, size])
    while (sample.size < 40) sample.add(1 + Math.floor(Math.random() * size))
    let i = 0
    for (const seq of sample) {
      const node = i++ % NODES
      const r = await call(node, 'GET', `${A()}/proofs/inclusion?seq=${seq}`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      const e = entries[seq - 1]!
      assert.deepEqual(r.body.entry, e, `node ${node + 1} serves entry ${seq} as downloaded`)
      assert.equal(r.body.treeSize, size)
      assert.equal(r.body.leafIndex, seq - 1)
      assert.equal(r.body.rootHash, checkpoint.rootHash)
      const leaf = leafHash(entryBytes(e))
      assert.equal(r.body.leafHash, b64(leaf))
      assert.ok(
        verifyInclusion(seq - 1, size, leaf, (r.body.proof as string[]).map(unb64), root),
        `inclusion proof of entry ${seq} from node ${node + 1}`,
      )
    }
    const leaves = entries.map((e) => leafHash(entryBytes(e)))
    for (const [from, node] of [
      [1, 0],
      [BEFORE_WRITES, 1],
      [500, 2],
      [size - 1, 0],
    ] as const) {
      const r = await call(node, 'GET', `${A()}/proofs/consistency?from=${from}&to=${size}`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      assert.equal(r.body.fromRoot, b64(rootFromLeafHashes(leaves.slice(0, from))))
      assert.equal(r.body.toRoot, checkpoint.rootHash)
      assert.ok(
        verifyConsistency(from, size, (r.body.proof as string[]).map(unb64), unb64(r.body.fromRoot), root),
        `consistency ${from} → ${size}`,
      )
    }
  })
}

describePostgres('multi-node on one PostgreSQL', suite)
