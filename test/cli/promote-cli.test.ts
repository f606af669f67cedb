// Diff, promote and change requests through the built `coffer` CLI against a real server:
// secrets diff (keys, then values with --reveal), promote with --all and check-and-set, a
// protected environment whose `secrets set` becomes a change request, approved by two other
// Admins (never by its requester), and one that went stale refused with its code.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createContext } from '../../src/context.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer secrets diff|promote and coffer changes (CLI, SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-promote-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let url = ''
  let owner = ''
  const admins: string[] = []
  const value = `canary-${randomBytes(12).toString('hex')}`

  const coffer = (token: string, args: string[]): Result => {
    const env = childEnv({ COFFER_URL: url, COFFER_TOKEN: token, NO_COLOR: '1', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' })
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, input: '', encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (token: string, args: string[]): Result => {
    const r = coffer(token, args)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }
  const P = ['--project', 'shop']

  before(async () => {
    ensureBuilt()
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'owner@example.com', '--workspace', 'Acme', '--json'],
      { encoding: 'utf8', env: childEnv({}) },
    )
    assert.equal(init.status, 0, init.stderr)
    owner = (JSON.parse(init.stdout) as { token: string }).token
    const e = readEnv({ COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'silent' })
    const ctx = await createContext(buildConfig(e), buildSecrets(e))
    try {
      const ws = await ctx.store.db.selectFrom('workspaces').select('id').where('slug', '=', 'acme').executeTakeFirstOrThrow()
      for (const n of [1, 2]) {
        admins.push(
          await ctx.committer.run(async (tx) => {
            const u = await ensureUser(tx, `admin${n}@example.com`, new Date())
            await addMember(tx, ws.id, u.id, 'admin', new Date())
            return (await issueToken(tx, { workspaceId: ws.id, userId: u.id, name: 'cli' }, new Date())).token
          }),
        )
      }
    } finally {
      await ctx.close()
    }
    ;({ child: server, url } = await startServer(['--data-dir', dataDir], childEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_DATA_DIR: dataDir })))
  })

  after(async () => {
    if (server) await stopChild(server)
    rmSync(work, { recursive: true, force: true })
  })

  test('diff, then promote', () => {
    ok(owner, ['projects', 'create', 'Shop'])
    ok(owner, ['secrets', 'set', `API_KEY=${value}`, 'SHARED=same', 'DEV_ONLY=x', ...P, '--env', 'development'])
    ok(owner, ['secrets', 'set', 'API_KEY=old', 'SHARED=same', 'STAGING_ONLY=y', ...P, '--env', 'staging'])

    const d = ok(owner, ['secrets', 'diff', '--from', 'development', '--to', 'staging', ...P])
    assert.match(d.stdout, /API_KEY\s+different/)
    assert.match(d.stdout, /DEV_ONLY\s+missing in shop\/staging/)
    assert.match(d.stdout, /STAGING_ONLY\s+extra in shop\/staging/)
    assert.doesNotMatch(d.stdout, /SHARED/, 'equal keys are not listed')
    assert.ok(!d.stdout.includes(value) && !d.stderr.includes(value), 'no value without --reveal')
    const revealed = ok(owner, ['secrets', 'diff', '--from', 'development', '--to', 'shop/staging', '--reveal', ...P])
    assert.ok(revealed.stdout.includes(value), 'values with --reveal')
    const json = JSON.parse(ok(owner, ['secrets', 'diff', '--from', 'shop/development', '--to', 'shop/staging', '--json']).stdout)
    assert.deepEqual(
      json.different.map((e: { key: string }) => e.key),
      ['API_KEY'],
    )

    // A stale --if-state writes nothing; the right one promotes.
    const stale = coffer(owner, ['secrets', 'promote', 'API_KEY', '--from', 'development', '--to', 'staging', '--if-state', 'old', ...P])
    assert.equal(stale.status, 1)
    assert.match(stale.stderr, /ERR_ENVIRONMENT_CHANGED/)
    const missing = coffer(owner, ['secrets', 'promote', 'API_KEY', 'NOPE', '--from', 'development', '--to', 'staging', ...P])
    assert.equal(missing.status, 1)
    assert.match(missing.stderr, /ERR_NOT_FOUND/)
    assert.equal(ok(owner, ['secrets', 'get', 'API_KEY', ...P, '--env', 'staging']).stdout, 'old', 'nothing written')
    const p = ok(owner, ['secrets', 'promote', 'API_KEY', '--from', 'development', '--to', 'staging', '--if-state', json.to.state, ...P])
    assert.match(p.stderr, /1 changed API_KEY \(v2\)/)
    assert.equal(ok(owner, ['secrets', 'get', 'API_KEY', ...P, '--env', 'staging']).stdout, value)
    const all = ok(owner, ['secrets', 'promote', '--all', '--from', 'development', '--to', 'staging', ...P])
    assert.match(all.stderr, /1 added DEV_ONLY/)
    assert.equal(coffer(owner, ['secrets', 'promote', '--from', 'development', '--to', 'staging', ...P]).status, 1, 'keys or --all')
  })

  test('a protected environment: set becomes a change request; two other admins approve; a stale one is refused', () => {
    const prod = [...P, '--env', 'production']
    ok(owner, ['envs', 'protect', '--approvals', '2', ...prod])
    const proposed = ok(owner, ['secrets', 'set', `API_KEY=${value}`, ...prod])
    const id = proposed.stdout.trim()
    assert.match(id, /^[0-9a-f-]{36}$/)
    assert.match(proposed.stderr, /production is protected: nothing is written until 2 other/)
    assert.equal(coffer(owner, ['secrets', 'get', 'API_KEY', ...prod]).status, 1, 'not applied yet')

    const list = ok(admins[0]!, ['changes', 'list', '--status', 'pending'])
    assert.ok(list.stdout.includes(id))
    assert.ok(!list.stdout.includes(value))
    const show = ok(admins[0]!, ['changes', 'show', id, '--reveal'])
    assert.ok(show.stdout.includes(value), 'revealed to an admin')

    const self = coffer(owner, ['changes', 'approve', id])
    assert.equal(self.status, 1)
    assert.match(self.stderr, /ERR_CHANGE_REQUEST_SELF_APPROVAL/)
    assert.match(ok(admins[0]!, ['changes', 'approve', id, '--comment', 'looks right']).stderr, /pending \(1\/2 approvals/)
    assert.match(ok(admins[1]!, ['changes', 'approve', id]).stderr, /applied/)
    assert.equal(ok(owner, ['secrets', 'get', 'API_KEY', ...prod]).stdout, value)

    // Two proposals on one key: the second applied first makes the first stale.
    const first = ok(admins[0]!, ['secrets', 'set', 'API_KEY=first', ...prod]).stdout.trim()
    // Promoting a value production already holds proposes nothing; another key is proposed, then rejected.
    const equal = ok(admins[1]!, ['secrets', 'promote', 'API_KEY', '--from', 'development', '--to', 'production', ...P])
    assert.equal(equal.stdout, '')
    assert.match(equal.stderr, /1 already equal/)
    const second = ok(admins[1]!, ['secrets', 'promote', 'SHARED', '--from', 'development', '--to', 'production', ...P]).stdout.trim()
    assert.match(ok(owner, ['changes', 'reject', second, '--comment', 'not now']).stderr, /rejected/)
    assert.equal(coffer(owner, ['secrets', 'get', 'SHARED', ...prod]).status, 1)
    const third = ok(admins[1]!, ['secrets', 'set', 'API_KEY=third', ...prod]).stdout.trim()
    ok(owner, ['changes', 'approve', third])
    ok(admins[0]!, ['changes', 'approve', third])
    ok(owner, ['changes', 'approve', first])
    const stale = coffer(admins[1]!, ['changes', 'approve', first])
    assert.equal(stale.status, 1)
    assert.match(stale.stderr, /ERR_CHANGE_REQUEST_STALE/)
    assert.equal(ok(owner, ['secrets', 'get', 'API_KEY', ...prod]).stdout, 'third', 'the newer value stays')
    const json = JSON.parse(ok(owner, ['changes', 'show', first, '--json']).stdout)
    assert.equal(json.status, 'stale')
    // An import into the protected environment is one change request too.
    const file = join(work, 'prod.env')
    writeFileSync(file, 'IMPORTED_A=1\nIMPORTED_B=2\n')
    const imported = ok(owner, ['import', file, ...prod])
    const importId = imported.stdout.trim()
    assert.match(importId, /^[0-9a-f-]{36}$/)
    const shown = JSON.parse(ok(admins[0]!, ['changes', 'show', importId, '--json']).stdout)
    // `coffer import` writes through the .env apply endpoint (identical values are left alone).
    assert.equal(shown.kind, 'apply')
    assert.deepEqual(
      shown.changes.map((c: { key: string }) => c.key),
      ['IMPORTED_A', 'IMPORTED_B'],
    )
    ok(admins[0]!, ['changes', 'approve', importId])
    ok(admins[1]!, ['changes', 'approve', importId])
    assert.equal(ok(owner, ['secrets', 'get', 'IMPORTED_B', ...prod]).stdout, '2')

    // More keys than one write takes: every batch is proposed (none dropped), each its own request.
    const big = join(work, 'big.env')
    writeFileSync(big, Array.from({ length: 1_100 }, (_, i) => `BULK_${String(i).padStart(4, '0')}=v${i}\n`).join(''))
    const bulk = ok(owner, ['import', big, ...prod])
    const ids = bulk.stdout.trim().split('\n')
    assert.equal(ids.length, 2, bulk.stdout)
    assert.match(bulk.stderr, /proposed as 2 change requests of at most 1000 keys each/)
    const sizes = ids.map((id) => JSON.parse(ok(admins[0]!, ['changes', 'show', id, '--json']).stdout).changes.length)
    assert.deepEqual(sizes, [1_000, 100])
    const asJson = JSON.parse(ok(owner, ['import', big, ...prod, '--json']).stdout)
    assert.equal(asJson.changeRequests.length, 2)
    for (const id of [...ids, ...asJson.changeRequests]) ok(admins[0]!, ['changes', 'reject', id])
    assert.equal(coffer(owner, ['secrets', 'get', 'BULK_1099', ...prod]).status, 1, 'nothing written')
    ok(owner, ['envs', 'protect', '--off', ...prod])
    ok(owner, ['secrets', 'set', 'DIRECT=1', ...prod])
  })
})
