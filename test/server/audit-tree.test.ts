// The audit log as an RFC 9162 Merkle tree, checked from the outside: signed checkpoints whose
// roots a client recomputes from the downloaded entries, inclusion and consistency proofs that
// verify against those signed roots, the stored complete subtrees, append-only checkpoints and
// nodes, a signing key never stored in clear, a key and a tree that survive a restart, and the
// migration that builds trees for logs written before it.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { ROLES, type Role } from '../../src/access/policy.js'
import { AuditLog } from '../../src/audit/audit-log.js'
import { CheckpointError, openCheckpoint, parseSignerKey, parseVerifierKey } from '../../src/audit/checkpoint.js'
import { chainHash, entryBytes, GENESIS_HASH, type AuditRecord } from '../../src/audit/entry.js'
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  rootFrom,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js'
import { unpackPeaks, withStoredNodes } from '../../src/audit/tree-store.js'
import { bootstrapWorkspace, createContext, type AppContext } from '../../src/context.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { openStore, type Executor, type Store } from '../../src/storage/database.js'
import { MIGRATIONS } from '../../src/storage/migrations.js'
import { currentSchemaVersion, migrate } from '../../src/storage/migrator.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { errorCode } from '../helpers/json-body.js'
import { createTestDatabase } from '../helpers/pg.js'
import { describeEachEngine } from '../helpers/engines.js'
import { systemClock } from '../../src/ops/clock.js'

interface Entry extends AuditRecord {
  prevHash: string
  hash: string
}

interface SignedCheckpoint {
  treeSize: number
  rootHash: string
  note: string
  /** The root as opened from the signed note with the published key. */
  root: Uint8Array
}

type Client = ReturnType<typeof api>
/** An inclusion proof reply, as GET …/audit/proofs/inclusion returns it. */
type InclusionProofBody = { treeSize: number; leafIndex: number; entry: unknown; leafHash: string; rootHash: string; proof: string[] }

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))
const popcount = (n: number) =>
  n
    .toString(2)
    .split('')
    .filter((c) => c === '1').length
const origin = (workspaceId: string) => `coffer/audit/${workspaceId}`

function assertCode(r: { status: number; body: unknown }, status: number, code: string, what: string): void {
  assert.equal(r.status, status, what)
  assert.equal(errorCode(r.body), code, what)
}

async function allEntries(c: Client, ws: string): Promise<Entry[]> {
  const out: Entry[] = []
  let after = 0
  for (;;) {
    const r = await c.get(`/v1/workspaces/${ws}/audit/entries?after=${after}&limit=5000`)
    assert.equal(r.status, 200)
    out.push(...(r.body.entries as Entry[]))
    if (r.body.next === null) return out
    after = r.body.next
  }
}

/** The leaf hashes of the entries, computed here from the entries alone (not by the server). */
const leavesOf = (entries: AuditRecord[]) => entries.map((e) => leafHash(entryBytes(e)))

/** The public key as anyone fetches it: no token. */
async function publicKey(app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/v1/audit/public-key' })
  assert.equal(res.statusCode, 200, '/v1/audit/public-key needs no token')
  const body = JSON.parse(res.body) as { publicKey: string; algorithm: string }
  assert.equal(body.algorithm, 'Ed25519')
  parseVerifierKey(body.publicKey)
  return body.publicKey
}

/** POSTs a checkpoint, reads it back with GET, and opens the signed note with the published key. */
async function checkpoint(c: Client, ws: { slug: string; id: string }, pk: string): Promise<SignedCheckpoint> {
  const posted = await c.post(`/v1/workspaces/${ws.slug}/audit/checkpoints`)
  assert.equal(posted.status, 201)
  assert.equal(posted.body.publicKey, pk)
  const got = await c.get(`/v1/workspaces/${ws.slug}/audit/checkpoint`)
  assert.equal(got.status, 200)
  assert.equal(got.body.publicKey, pk)
  assert.deepEqual(got.body.checkpoint, posted.body.checkpoint, 'GET returns the checkpoint just issued')
  const cp = got.body.checkpoint as { treeSize: number; rootHash: string; note: string }
  const opened = openCheckpoint(cp.note, pk, { origin: origin(ws.id) })
  assert.equal(opened.treeSize, BigInt(cp.treeSize), 'the signed size is the stated size')
  assert.equal(b64(opened.rootHash), cp.rootHash, 'the signed root is the stated root')
  return { treeSize: cp.treeSize, rootHash: cp.rootHash, note: cp.note, root: opened.rootHash }
}

/** A user of workspace A with `role` and a token, made the way an admin command would. */
async function memberToken(h: Harness, role: Role): Promise<string> {
  const { token } = await h.ctx.committer.run(async (tx) => {
    const u = await ensureUser(tx, `${role}-${randomBytes(3).toString('hex')}@acme.test`, new Date())
    await addMember(tx, h.a.id, u.id, role, new Date())
    return issueToken(tx, { workspaceId: h.a.id, userId: u.id, name: `${role} token` }, new Date())
  })
  return token
}

/** Every stored complete subtree of a workspace, checked against the independent tree. */
async function checkStoredTree(db: Executor, workspaceId: string, leaves: Uint8Array[]): Promise<void> {
  const n = leaves.length
  const head = await db.selectFrom('audit_heads').select(['seq', 'peaks']).where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow()
  assert.equal(Number(head.seq), n, 'the head is at the last entry')
  assert.equal(Buffer.from(head.peaks).length, 32 * popcount(n), 'one peak per set bit of the size')
  assert.deepEqual(unpackPeaks(n, head.peaks).root(), rootFromLeafHashes(leaves), 'the stored peaks give the independent root')
  const nodes = await db.selectFrom('audit_nodes').select(['level', 'idx', 'hash']).where('workspace_id', '=', workspaceId).execute()
  assert.equal(nodes.length, 2 * n - popcount(n), `audit_nodes holds exactly the 2n − popcount(n) complete subtrees (n = ${n})`)
  for (const node of nodes) {
    const width = 2 ** node.level
    const start = Number(node.idx) * width
    assert.ok(start + width <= n, `node ${node.level}/${node.idx} is complete`)
    assert.deepEqual(
      new Uint8Array(node.hash),
      rootFromLeafHashes(leaves.slice(start, start + width)),
      `node ${node.level}/${node.idx} is the MTH of its leaves`,
    )
  }
  assert.deepEqual(await withStoredNodes(db, workspaceId, (nodeAt) => rootFrom(n, nodeAt)), rootFromLeafHashes(leaves))
}

function suite(engine: EngineName): void {
  test('a tampered stored node makes served proofs fail against the signed root', async () => {
    const h = await startHarness(engine)
    try {
      const a = api(h.app, h.a.token)
      const W = `/v1/workspaces/${h.a.slug}`
      assert.equal((await a.post(`${W}/projects`, { name: 'Nodes' })).status, 201)
      for (const k of ['N1', 'N2', 'N3', 'N4', 'N5'])
        assert.equal((await a.put(`${W}/projects/nodes/environments/development/secrets/${k}`, { value: 'x' })).status, 200)
      const cp = (await a.post(`${W}/audit/checkpoints`)).body.checkpoint as { note: string; treeSize: number }
      const pk = (await h.app.inject({ method: 'GET', url: '/v1/audit/public-key' })).json().publicKey as string
      const root = openCheckpoint(cp.note, pk, { origin: origin(h.a.id) }).rootHash
      const proofOk = async (seq: number) => {
        const p = (await a.get(`${W}/audit/proofs/inclusion?seq=${seq}&treeSize=${cp.treeSize}`)).body
        return verifyInclusion(
          p.leafIndex,
          p.treeSize,
          Buffer.from(p.leafHash, 'base64'),
          (p.proof as string[]).map((x) => Buffer.from(x, 'base64')),
          root,
        )
      }
      assert.equal(await proofOk(1), true)
      // An attacker with database access rewrites the stored hash of leaf 2 (a sibling in
      // leaf 1's proof): the server now serves a proof that no longer reaches the signed root.
      await sql
        .raw(engine === 'sqlite' ? 'DROP TRIGGER audit_nodes_no_update' : 'ALTER TABLE audit_nodes DISABLE TRIGGER USER')
        .execute(h.db)
      await h.db
        .updateTable('audit_nodes')
        .set({ hash: randomBytes(32) })
        .where('workspace_id', '=', h.a.id)
        .where('level', '=', 0)
        .where('idx', '=', 1)
        .execute()
      assert.equal(await proofOk(1), false, 'the client catches the forged node')
    } finally {
      await h.close()
    }
  })

  describe('checkpoints, proofs and stored subtrees', () => {
    let h: Harness
    let a: Client
    let pk: string
    const cps: SignedCheckpoint[] = []
    let entries: Entry[] = []
    const E = (slug: string) => `/v1/workspaces/${slug}/projects/tree/environments/development`

    before(async () => {
      h = await startHarness(engine)
      a = api(h.app, h.a.token)
      pk = await publicKey(h.app)
    })
    after(() => h?.close())

    test('the public key needs no token, and every checkpoint names it', async () => {
      const key = parseVerifierKey(pk)
      assert.equal(key.name, 'coffer-audit')
      const withBadToken = await h.app.inject({ method: 'GET', url: '/v1/audit/public-key', headers: { authorization: 'Bearer nope' } })
      assert.equal(withBadToken.statusCode, 200, 'a public route ignores a bad token')
      assert.equal(JSON.parse(withBadToken.body).publicKey, pk)
      const got = await a.get(`/v1/workspaces/${h.a.slug}/audit/checkpoint`)
      assert.equal(got.status, 200)
      assert.equal(got.body.publicKey, pk)
      assert.equal(got.body.checkpoint, null, 'no checkpoint before the first is issued')
    })

    test('mixed writes and reveals with checkpoints in between: every signed root is the independent root', async () => {
      const ra = () => randomBytes(12).toString('hex')
      assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Tree' })).status, 201)
      // Workspace B writes too, so that the two trees are seen to stay apart.
      const b = api(h.app, h.b.token)
      assert.equal((await b.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Tree' })).status, 201)
      for (let round = 0; round < 5; round++) {
        for (let k = 0; k < 3; k++) assert.equal((await a.put(`${E(h.a.slug)}/secrets/K${round}_${k}`, { value: ra() })).status, 200)
        assert.equal((await a.put(`${E(h.a.slug)}/secrets/K${round}_0`, { value: ra() })).status, 200)
        assert.equal((await a.get(`${E(h.a.slug)}/secrets/K${round}_1?reveal=true`)).status, 200)
        assert.equal((await a.get(`${E(h.a.slug)}/secrets?reveal=true`)).status, 200)
        if (round % 2 === 1) {
          assert.equal((await a.del(`${E(h.a.slug)}/secrets/K${round}_2`)).status, 200)
          assert.equal((await a.post(`${E(h.a.slug)}/secrets/K${round}_2/restore`)).status, 200)
        }
        assert.equal((await b.put(`${E(h.b.slug)}/secrets/B${round}`, { value: ra() })).status, 200)
        cps.push(await checkpoint(a, h.a, pk))
      }
      entries = await allEntries(a, h.a.slug)
      assert.ok(entries.length >= 37, `enough entries (${entries.length})`)
      assert.ok(cps.length >= 4)
      for (let i = 1; i < cps.length; i++) assert.ok(cps[i]!.treeSize > cps[i - 1]!.treeSize, 'checkpoints grow')
      const leaves = leavesOf(entries)
      for (const cp of cps) {
        assert.deepEqual(
          cp.root,
          rootFromLeafHashes(leaves.slice(0, cp.treeSize)),
          `the signed root of ${cp.treeSize} is the root of the downloaded entries`,
        )
        // Issuing a checkpoint is itself recorded, right after the entries it covers.
        const rec = entries[cp.treeSize]!
        assert.equal(rec.action, 'audit.checkpoint')
        assert.deepEqual(JSON.parse(rec.details), { treeSize: cp.treeSize, rootHash: cp.rootHash })
      }
      // The note is bound to A's origin: it does not open as B's, nor with another key.
      assert.throws(() => openCheckpoint(cps[0]!.note, pk, { origin: origin(h.b.id) }), CheckpointError)
      // issue() on an unchanged log returns the newest checkpoint rather than signing again.
      const again1 = await h.ctx.auditTree.issue(h.db, h.a.id)
      const again2 = await h.ctx.auditTree.issue(h.db, h.a.id)
      assert.deepEqual(again2, again1)
      const last = await a.get(`/v1/workspaces/${h.a.slug}/audit/checkpoint`)
      assert.equal(last.body.checkpoint.treeSize, entries.length)
      cps.push({ ...again1, root: openCheckpoint(again1.note, pk, { origin: origin(h.a.id) }).rootHash })
      assert.deepEqual(cps.at(-1)!.root, rootFromLeafHashes(leaves))
    })

    test("every entry's inclusion proof, by seq and by id, verifies against the signed roots", async () => {
      const leaves = leavesOf(entries)
      const newest = cps.at(-1)!
      const smaller = cps[1]!
      for (const e of entries) {
        const leaf = leafHash(entryBytes(e))
        const check = (body: InclusionProofBody, cp: SignedCheckpoint, what: string) => {
          assert.equal(body.treeSize, cp.treeSize, what)
          assert.equal(body.leafIndex, e.seq - 1, what)
          assert.deepEqual(body.entry, e, `${what}: the proof carries the entry as listed`)
          assert.equal(body.leafHash, b64(leaf), `${what}: the server's leaf hash is the independent one`)
          assert.equal(body.rootHash, cp.rootHash, what)
          const proof = (body.proof as string[]).map(fromB64)
          assert.ok(verifyInclusion(e.seq - 1, cp.treeSize, leaf, proof, cp.root), `${what}: verifies against the signed root`)
          assert.deepEqual(proof, inclusionProof(e.seq - 1, leaves.slice(0, cp.treeSize)), `${what}: equals the reference proof`)
          // A proof is for its own leaf only.
          const other = leafHash(Buffer.from(`not entry ${e.seq}`))
          assert.equal(verifyInclusion(e.seq - 1, cp.treeSize, other, proof, cp.root), false, `${what}: not for another leaf`)
        }
        const bySeq = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/inclusion?seq=${e.seq}`)
        assert.equal(bySeq.status, 200)
        check(bySeq.body, newest, `seq ${e.seq} at the newest checkpoint`)
        const byId = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/inclusion?id=${e.id}&treeSize=${newest.treeSize}`)
        assert.equal(byId.status, 200)
        check(byId.body, newest, `id of ${e.seq} at an explicit treeSize`)
        if (e.seq <= smaller.treeSize) {
          const old = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/inclusion?id=${e.id}&treeSize=${smaller.treeSize}`)
          assert.equal(old.status, 200)
          check(old.body, smaller, `id of ${e.seq} in the smaller tree of ${smaller.treeSize}`)
          const oldSeq = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/inclusion?seq=${e.seq}&treeSize=${smaller.treeSize}`)
          check(oldSeq.body, smaller, `seq ${e.seq} in the smaller tree of ${smaller.treeSize}`)
        }
      }
    })

    test('consistency proofs between every pair of signed checkpoints verify', async () => {
      const leaves = leavesOf(entries)
      for (const older of cps) {
        for (const newer of cps) {
          if (newer.treeSize < older.treeSize) continue
          const r = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/consistency?from=${older.treeSize}&to=${newer.treeSize}`)
          assert.equal(r.status, 200)
          const what = `${older.treeSize} → ${newer.treeSize}`
          assert.equal(r.body.from, older.treeSize)
          assert.equal(r.body.to, newer.treeSize)
          assert.equal(r.body.fromRoot, older.rootHash, what)
          assert.equal(r.body.toRoot, newer.rootHash, what)
          const proof = (r.body.proof as string[]).map(fromB64)
          assert.ok(
            verifyConsistency(older.treeSize, newer.treeSize, proof, older.root, newer.root),
            `${what} verifies against the signed roots`,
          )
          assert.deepEqual(proof, consistencyProof(older.treeSize, newer.treeSize, leaves), `${what} equals the reference proof`)
          if (older.treeSize < newer.treeSize) {
            const forged = rootFromLeafHashes([...leaves.slice(0, older.treeSize - 1), leafHash(Buffer.from('forged'))])
            assert.equal(
              verifyConsistency(older.treeSize, newer.treeSize, proof, forged, newer.root),
              false,
              `${what}: not from another history`,
            )
          }
        }
      }
      // Without `to`, the proof reaches the log as it is now.
      const now = await allEntries(a, h.a.slug)
      const r = await a.get(`/v1/workspaces/${h.a.slug}/audit/proofs/consistency?from=${cps[0]!.treeSize}`)
      assert.equal(r.status, 200)
      assert.equal(r.body.to, now.length)
      assert.equal(r.body.toRoot, b64(rootFromLeafHashes(leavesOf(now))))
      assert.ok(
        verifyConsistency(cps[0]!.treeSize, now.length, (r.body.proof as string[]).map(fromB64), cps[0]!.root, fromB64(r.body.toRoot)),
      )
    })

    test('out-of-range and malformed proof requests are refused with stable codes', async () => {
      const size = (await allEntries(a, h.a.slug)).length
      const cpSize = cps.at(-1)!.treeSize
      const P = `/v1/workspaces/${h.a.slug}/audit/proofs`
      const id = entries[0]!.id
      const bad: Array<[string, string]> = [
        ['seq 0', `${P}/inclusion?seq=0`],
        ['negative seq', `${P}/inclusion?seq=-1`],
        ['seq not a number', `${P}/inclusion?seq=abc`],
        ['seq beyond the newest checkpoint', `${P}/inclusion?seq=${cpSize + 1}`],
        ['seq beyond the log', `${P}/inclusion?seq=${size + 1}&treeSize=${size}`],
        ['seq beyond an explicit treeSize', `${P}/inclusion?seq=5&treeSize=4`],
        ['treeSize beyond the log', `${P}/inclusion?seq=1&treeSize=${size + 1}`],
        ['treeSize 0', `${P}/inclusion?seq=1&treeSize=0`],
        ['both seq and id', `${P}/inclusion?seq=1&id=${id}`],
        ['neither seq nor id', `${P}/inclusion`],
        ['id not a UUID', `${P}/inclusion?id=not-a-uuid`],
        ['an unknown parameter', `${P}/inclusion?seq=1&extra=1`],
        ['from > to', `${P}/consistency?from=5&to=4`],
        ['from 0', `${P}/consistency?from=0&to=4`],
        ['no from', `${P}/consistency?to=4`],
        ['to beyond the log', `${P}/consistency?from=1&to=${size + 1}`],
        ['from beyond the log', `${P}/consistency?from=${size + 1}`],
        ['entries limit 0', `/v1/workspaces/${h.a.slug}/audit/entries?limit=0`],
      ]
      for (const [what, url] of bad) assertCode(await a.get(url), 400, 'ERR_VALIDATION', what)
      assertCode(await a.get(`${P}/inclusion?id=${randomUUID()}`), 404, 'ERR_NOT_FOUND', 'an unknown id')
      // B's entry ids are not A's.
      const bEntry = (await allEntries(api(h.app, h.b.token), h.b.slug))[0]!
      assertCode(await a.get(`${P}/inclusion?id=${bEntry.id}`), 404, 'ERR_NOT_FOUND', "another workspace's entry id")
    })

    test("another workspace's audit routes are 404, a member's are 403, an admin's are allowed", async () => {
      const routes = (slug: string): Array<['GET' | 'POST', string]> => [
        ['GET', `/v1/workspaces/${slug}/audit/checkpoint`],
        ['POST', `/v1/workspaces/${slug}/audit/checkpoints`],
        ['GET', `/v1/workspaces/${slug}/audit/proofs/inclusion?seq=1`],
        ['GET', `/v1/workspaces/${slug}/audit/proofs/consistency?from=1`],
        ['GET', `/v1/workspaces/${slug}/audit/entries`],
        ['GET', `/v1/workspaces/${slug}/audit/verify`],
      ]
      const call = (c: Client, [m, url]: ['GET' | 'POST', string]) => (m === 'GET' ? c.get(url) : c.post(url))
      const before = (await allEntries(api(h.app, h.b.token), h.b.slug)).length
      for (const slug of [h.b.slug, h.b.id]) {
        for (const r of routes(slug)) assertCode(await call(a, r), 404, 'ERR_NOT_FOUND', `A's token on ${r[0]} ${r[1]}`)
      }
      assert.equal((await allEntries(api(h.app, h.b.token), h.b.slug)).length, before, 'nothing was written to B')
      const member = api(h.app, await memberToken(h, 'member'))
      for (const r of routes(h.a.slug)) assertCode(await call(member, r), 403, 'ERR_FORBIDDEN', `a member on ${r[0]} ${r[1]}`)
      assertCode(
        await member.get(`/v1/workspaces/${h.a.slug}/audit/proofs/inclusion?seq=0`),
        403,
        'ERR_FORBIDDEN',
        'role before validation',
      )
      assert.ok(ROLES.includes('admin'))
      const admin = api(h.app, await memberToken(h, 'admin'))
      for (const r of routes(h.a.slug))
        assert.equal((await call(admin, r)).status, r[0] === 'POST' ? 201 : 200, `an admin on ${r[0]} ${r[1]}`)
      // No token at all: 401 on the workspace routes, unlike the public key.
      const anon = await h.app.inject({ method: 'GET', url: `/v1/workspaces/${h.a.slug}/audit/checkpoint` })
      assert.equal(anon.statusCode, 401)
      assert.equal(JSON.parse(anon.body).error.code, 'ERR_UNAUTHENTICATED')
    })

    test('audit_nodes holds exactly the complete subtrees of each workspace, and they are right', async () => {
      await checkStoredTree(h.db, h.a.id, leavesOf(await allEntries(a, h.a.slug)))
      await checkStoredTree(h.db, h.b.id, leavesOf(await allEntries(api(h.app, h.b.token), h.b.slug)))
    })

    test('checkpoints and nodes are append-only: the database refuses UPDATE and DELETE', async () => {
      const db = h.db
      const cpCount = async () =>
        (await db.selectFrom('audit_checkpoints').select('tree_size').where('workspace_id', '=', h.a.id).execute()).length
      const nodeCount = async () => (await db.selectFrom('audit_nodes').select('idx').where('workspace_id', '=', h.a.id).execute()).length
      const [cpsBefore, nodesBefore] = [await cpCount(), await nodeCount()]
      await assert.rejects(
        db
          .updateTable('audit_checkpoints')
          .set({ root_hash: randomBytes(32) })
          .where('workspace_id', '=', h.a.id)
          .execute(),
        /append-only/,
      )
      await assert.rejects(
        db.updateTable('audit_checkpoints').set({ note: 'x' }).where('workspace_id', '=', h.a.id).execute(),
        /append-only/,
      )
      await assert.rejects(db.deleteFrom('audit_checkpoints').where('workspace_id', '=', h.a.id).execute(), /append-only/)
      await assert.rejects(
        db
          .updateTable('audit_nodes')
          .set({ hash: randomBytes(32) })
          .where('workspace_id', '=', h.a.id)
          .execute(),
        /append-only/,
      )
      await assert.rejects(db.deleteFrom('audit_nodes').where('workspace_id', '=', h.a.id).execute(), /append-only/)
      if (engine === 'postgres') {
        await assert.rejects(sql.raw('TRUNCATE audit_checkpoints').execute(db), /append-only/)
        await assert.rejects(sql.raw('TRUNCATE audit_nodes').execute(db), /append-only/)
      }
      assert.equal(await cpCount(), cpsBefore)
      assert.equal(await nodeCount(), nodesBefore)
      // A second checkpoint at a size already signed is not stored twice (the key is (workspace, size)).
      const first = await db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('workspace_id', '=', h.a.id)
        .orderBy('tree_size')
        .executeTakeFirstOrThrow()
      await assert.rejects(
        db
          .insertInto('audit_checkpoints')
          .values({ ...first, note: 'another note' })
          .execute(),
      )
      await checkStoredTree(db, h.a.id, leavesOf(await allEntries(a, h.a.slug)))
    })

    test('the signing key is stored only wrapped: no PRIVATE+KEY and no seed in clear', async () => {
      const db = h.db
      const meta = await db
        .selectFrom('meta')
        .select(['key', 'value'])
        .where('key', 'in', ['audit_signer_key', 'audit_verifier_key'])
        .execute()
      assert.equal(meta.length, 2)
      const wrapped = Buffer.from(meta.find((m) => m.key === 'audit_signer_key')!.value)
      assert.equal(Buffer.from(meta.find((m) => m.key === 'audit_verifier_key')!.value).toString('utf8'), pk)
      // Unwrapping with the root key gives the signer key of the published verifier key.
      const signer = (await h.ctx.dataKeys.provider.unwrap(wrapped, Buffer.from('coffer/audit-signer-key/v1'))).toString('utf8')
      assert.ok(signer.startsWith('PRIVATE+KEY+coffer-audit+'), 'the wrapped value is a note signer key')
      assert.ok(parseSignerKey(signer).verifierKey === pk, 'the stored signer key matches the published key')
      // PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>: the base64 may itself contain '+'.
      const data = Buffer.from(signer.split('+').slice(4).join('+'), 'base64')
      assert.equal(data.length, 33)
      const seed = data.subarray(1)
      const needles: Array<[string, Buffer]> = [
        ['PRIVATE+KEY', Buffer.from('PRIVATE+KEY')],
        ['the signer key string', Buffer.from(signer)],
        ['the raw seed', Buffer.from(seed)],
        ['the seed in hex', Buffer.from(seed.toString('hex'))],
        ['the seed in base64', Buffer.from(seed.toString('base64'))],
        ['the key data in base64', Buffer.from(data.toString('base64'))],
      ]
      const haystacks: Array<[string, Buffer]> = [['meta.audit_signer_key', wrapped]]
      if (engine === 'sqlite') {
        // The raw database files, WAL included, as an attacker with the data directory reads them.
        for (const f of readdirSync(h.dataDir)) if (f.startsWith('coffer.db')) haystacks.push([f, readFileSync(join(h.dataDir, f))])
        assert.ok(haystacks.length >= 2, 'the database file was read')
      } else {
        for (const m of await db.selectFrom('meta').select(['key', 'value']).execute())
          haystacks.push([`meta.${m.key}`, Buffer.from(m.value)])
        const dump = await sql<{ t: string }>`SELECT string_agg(note, '') AS t FROM audit_checkpoints`.execute(db)
        haystacks.push(['audit_checkpoints', Buffer.from(dump.rows[0]?.t ?? '')])
      }
      for (const [where, bytes] of haystacks) {
        for (const [what, needle] of needles) assert.equal(bytes.includes(needle), false, `${where} must not hold ${what}`)
      }
      data.fill(0)
    })
  })

  describe('a restart keeps the key, and the tree continues', () => {
    let dataDir = ''
    let drop: (() => Promise<void>) | undefined
    const raw: Record<string, string> = { COFFER_LOG_LEVEL: 'silent' }
    let running: { ctx: AppContext; app: FastifyInstance } | undefined

    async function start(): Promise<{ ctx: AppContext; app: FastifyInstance }> {
      const e = readEnv(raw)
      const ctx = await createContext(buildConfig(e), buildSecrets(e))
      const app = await buildApp(ctx)
      await app.ready()
      running = { ctx, app }
      return running
    }
    async function stop(): Promise<void> {
      if (!running) return
      await running.app.close()
      await running.ctx.close()
      running = undefined
    }

    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'coffer-tree-restart-'))
      raw.COFFER_DATA_DIR = dataDir
      if (engine === 'postgres') {
        const db = await createTestDatabase()
        raw.DATABASE_URL = db.url
        drop = db.drop
      }
    })
    after(async () => {
      await stop()
      await rm(dataDir, { recursive: true, force: true })
      if (drop) await drop()
    })

    test('same public key, old checkpoints kept, new checkpoint extends the old one', async () => {
      const first = await start()
      const boot = await bootstrapWorkspace(first.ctx, { name: 'Restart', ownerEmail: 'owner@restart.test' })
      const ws = { slug: boot.workspace.slug, id: boot.workspace.id }
      let c = api(first.app, boot.token)
      assert.equal((await c.post(`/v1/workspaces/${ws.slug}/projects`, { name: 'Tree' })).status, 201)
      const env = `/v1/workspaces/${ws.slug}/projects/tree/environments/development`
      for (const k of ['A', 'B', 'C'])
        assert.equal((await c.put(`${env}/secrets/${k}`, { value: randomBytes(8).toString('hex') })).status, 200)
      const pk1 = await publicKey(first.app)
      const cp1 = await checkpoint(c, ws, pk1)
      const wrapped1 = await first.ctx.store.db
        .selectFrom('meta')
        .select('value')
        .where('key', '=', 'audit_signer_key')
        .executeTakeFirstOrThrow()
      await stop()

      const second = await start()
      c = api(second.app, boot.token)
      const pk2 = await publicKey(second.app)
      assert.equal(pk2, pk1, 'the same signing key after a restart')
      const wrapped2 = await second.ctx.store.db
        .selectFrom('meta')
        .select('value')
        .where('key', '=', 'audit_signer_key')
        .executeTakeFirstOrThrow()
      assert.ok(Buffer.from(wrapped2.value).equals(Buffer.from(wrapped1.value)), 'the stored key was not replaced')
      const kept = await c.get(`/v1/workspaces/${ws.slug}/audit/checkpoint`)
      assert.equal(kept.body.checkpoint.note, cp1.note, 'the old checkpoint is still the newest')
      for (const k of ['D', 'E']) assert.equal((await c.put(`${env}/secrets/${k}`, { value: randomBytes(8).toString('hex') })).status, 200)
      assert.equal((await c.get(`${env}/secrets/D?reveal=true`)).status, 200)
      const cp2 = await checkpoint(c, ws, pk1)
      assert.ok(cp2.treeSize > cp1.treeSize)
      const entries = await allEntries(c, ws.slug)
      const leaves = leavesOf(entries)
      assert.deepEqual(cp2.root, rootFromLeafHashes(leaves.slice(0, cp2.treeSize)))
      const r = await c.get(`/v1/workspaces/${ws.slug}/audit/proofs/consistency?from=${cp1.treeSize}&to=${cp2.treeSize}`)
      assert.equal(r.status, 200)
      assert.ok(
        verifyConsistency(cp1.treeSize, cp2.treeSize, (r.body.proof as string[]).map(fromB64), cp1.root, cp2.root),
        'the new checkpoint extends the one signed before the restart',
      )
      await checkStoredTree(second.ctx.store.db, ws.id, leaves)
      assert.equal((await c.get(`/v1/workspaces/${ws.slug}/audit/verify`)).body.ok, true)
    })
  })

  describe('migration 2 builds the trees of logs written before it', () => {
    let dataDir = ''
    let drop: (() => Promise<void>) | undefined
    let store: Store | undefined

    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'coffer-tree-migrate-'))
      if (engine === 'postgres') {
        const db = await createTestDatabase()
        drop = db.drop
        store = openStore({ engine: 'postgres', url: db.url })
      } else {
        store = openStore({ engine: 'sqlite', path: join(dataDir, 'coffer.db') })
      }
    })
    after(async () => {
      await store?.close()
      await rm(dataDir, { recursive: true, force: true })
      if (drop) await drop()
    })

    test('a v1 database with logs of 0, 1, 2, 13 and 64 entries gets their trees, and appends continue', async () => {
      const s = store!
      assert.deepEqual(await migrate(s, MIGRATIONS.slice(0, 1)), [1])
      assert.equal(await currentSchemaVersion(s), 1)
      const sizes = [0, 1, 2, 13, 64]
      const logs: Array<{ id: string; records: AuditRecord[] }> = []
      for (const n of sizes) {
        const id = randomUUID()
        await s.db
          .insertInto('workspaces')
          .values({
            id,
            slug: `ws-${id.slice(0, 8)}`,
            name: `Log of ${n}`,
            fingerprint_key: randomBytes(60),
            root_key_id: 'test',
            created_at: new Date().toISOString(),
          })
          .execute()
        // v1-style rows, written as version 1 of Coffer wrote them: chain only, no tree.
        let prev: Buffer = GENESIS_HASH
        const records: AuditRecord[] = []
        for (let seq = 1; seq <= n; seq++) {
          const r: AuditRecord = {
            workspaceId: id,
            seq,
            id: randomUUID(),
            time: new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString(),
            actor: { type: 'user', id: randomUUID(), ip: '10.0.0.1', userAgent: 'coffer-v1' },
            requestId: randomUUID(),
            action: seq % 3 === 0 ? 'secret.reveal' : 'secret.update',
            target: { type: 'secret', id: randomUUID() },
            details: JSON.stringify({ key: `K${seq}`, n: seq }),
          }
          const hash = chainHash(prev, entryBytes(r))
          await s.db
            .insertInto('audit_entries')
            .values({
              workspace_id: id,
              seq,
              id: r.id,
              time: r.time,
              actor_type: r.actor.type,
              actor_id: r.actor.id,
              actor_ip: r.actor.ip,
              actor_ua: r.actor.userAgent,
              request_id: r.requestId,
              action: r.action,
              target_type: r.target.type,
              target_id: r.target.id,
              details: r.details,
              prev_hash: prev,
              hash,
            })
            .execute()
          records.push(r)
          prev = hash
        }
        await sql`INSERT INTO audit_heads (workspace_id, seq, hash) VALUES (${id}, ${n}, ${prev})`.execute(s.db)
        logs.push({ id, records })
      }

      const applied = await migrate(s)
      assert.ok(applied.includes(2), 'migration 2 ran')
      const audit = new AuditLog(s.engine, async () => randomBytes(32), systemClock)
      for (const { id, records } of logs) {
        await checkStoredTree(s.db, id, leavesOf(records))
        assert.equal((await audit.verify(s.db, id)).ok, true, 'the chain is untouched')
      }

      // The migrated trees go on growing with appends.
      const actor = { type: 'system' as const, id: 'test', ip: '', userAgent: 'test' }
      for (const log of logs) {
        for (let i = 0; i < 3; i++) {
          // Queued, then integrated by the sequencer's batch.
          const seq = await s.db.transaction().execute(async (tx) => {
            await audit.append(tx, log.id, actor, randomUUID(), {
              action: 'secret.update',
              target: { type: 'workspace', id: log.id },
              details: { i },
            })
            const r = await audit.integrate(tx, log.id, { limit: 10 })
            assert.equal(r?.count, 1)
            return r!.seq
          })
          assert.equal(seq, log.records.length + 1)
          const [rec] = await audit.list(s.db, log.id, seq - 1, 1)
          log.records.push(rec!)
        }
        await checkStoredTree(s.db, log.id, leavesOf(log.records))
        assert.equal((await audit.verify(s.db, log.id)).ok, true)
      }
    })
  })
}

describeEachEngine(suite)
