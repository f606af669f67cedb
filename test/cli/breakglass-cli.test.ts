// Break-glass and workspace deletion through the built `coffer` CLI against a real server:
// seal an environment, request, two approvals, use, revoke; then delete the workspace.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
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

describe('coffer breakglass and coffer workspace delete (CLI, SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-bg-cli-'))
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
  const scope = ['--project', 'pay', '--env', 'production']

  before(async () => {
    ensureBuilt()
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'owner@example.com', '--workspace', 'Acme', '--json'],
      { encoding: 'utf8', env: childEnv({}) },
    )
    assert.equal(init.status, 0, init.stderr)
    owner = (JSON.parse(init.stdout) as { token: string }).token
    // Two more Admins, made the way an admin tool would, before the server starts.
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

  test('seal, request, two approvals, use, revoke', () => {
    ok(owner, ['projects', 'create', 'Pay'])
    ok(owner, ['secrets', 'set', `DB_PASSWORD=${value}`, ...scope])
    ok(admins[0]!, ['envs', 'seal', ...scope])
    assert.match(ok(owner, ['envs', 'list', '--project', 'pay']).stdout, /production\s+Production\s+\S+\s+sealed/)
    const sealed = coffer(owner, ['secrets', 'get', 'DB_PASSWORD', ...scope])
    assert.notEqual(sealed.status, 0)
    assert.match(sealed.stderr, /ERR_BREAK_GLASS_REQUIRED/)
    assert.ok(!sealed.stdout.includes(value) && !sealed.stderr.includes(value))
    assert.match(ok(owner, ['secrets', 'list', ...scope]).stdout, /DB_PASSWORD/, 'listing keys still works')

    const id = ok(owner, ['breakglass', 'request', ...scope, '--reason', 'INC-7 payments down', '--minutes', '15']).stdout.trim()
    assert.match(id, /^[0-9a-f-]{36}$/)
    const self = coffer(owner, ['breakglass', 'approve', id])
    assert.notEqual(self.status, 0)
    assert.match(self.stderr, /ERR_BREAK_GLASS_SELF_APPROVAL/)
    ok(admins[0]!, ['breakglass', 'approve', id, '--comment', 'seen the incident'])
    const listed = JSON.parse(ok(admins[1]!, ['breakglass', 'list', '--status', 'pending', '--json']).stdout) as Array<{
      id: string
      approvals: number
    }>
    assert.deepEqual(
      listed.map((r) => [r.id, r.approvals]),
      [[id, 1]],
    )
    assert.match(ok(admins[1]!, ['breakglass', 'list']).stdout, /INC-7 payments down/)
    assert.notEqual(coffer(owner, ['secrets', 'get', 'DB_PASSWORD', ...scope]).status, 0, 'one approval is not enough')
    ok(admins[1]!, ['breakglass', 'approve', id])
    const got = ok(owner, ['secrets', 'get', 'DB_PASSWORD', ...scope])
    assert.ok(got.stdout.trim() === value, 'the grant reveals the value')
    ok(owner, ['breakglass', 'revoke', id])
    const after = coffer(owner, ['secrets', 'get', 'DB_PASSWORD', ...scope])
    assert.notEqual(after.status, 0)
    assert.match(after.stderr, /ERR_BREAK_GLASS_REQUIRED/)
    const all = JSON.parse(ok(owner, ['breakglass', 'list', '--json']).stdout) as Array<{ id: string; status: string }>
    assert.equal(all.find((r) => r.id === id)?.status, 'revoked')
  })

  test('workspace delete: needs the slug, then shreds and prints the signed receipt', () => {
    const noConfirm = coffer(owner, ['workspace', 'delete', 'acme'])
    assert.notEqual(noConfirm.status, 0, 'no terminal, no --confirm: refused')
    assert.match(noConfirm.stderr, /--confirm acme/)
    const wrong = coffer(owner, ['workspace', 'delete', 'acme', '--confirm', 'acm'])
    assert.notEqual(wrong.status, 0)
    assert.match(wrong.stderr, /ERR_CONFIRMATION_MISMATCH/)
    const byAdmin = coffer(admins[0]!, ['workspace', 'delete', 'acme', '--confirm', 'acme'])
    assert.notEqual(byAdmin.status, 0)
    assert.match(byAdmin.stderr, /ERR_FORBIDDEN/)
    ok(owner, ['whoami'])
    const done = ok(owner, ['workspace', 'delete', 'acme', '--confirm', 'acme'])
    assert.match(done.stderr, /Workspace acme deleted: \d+ data keys destroyed/)
    assert.match(done.stdout, /^coffer\/audit\/[0-9a-f-]{36}\n\d+\n/, 'the signed checkpoint of the final tree')
    const gone = coffer(owner, ['whoami'])
    assert.notEqual(gone.status, 0)
    assert.match(gone.stderr, /ERR_UNAUTHENTICATED/)
  })
})
