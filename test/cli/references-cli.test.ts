// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Coffer references (${KEY}), not templates
// References, imports and personal overrides through the built `coffer` CLI against a real
// server: `secrets get --raw`, `secrets list --reveal --raw`, `export --raw`, `run` seeing
// resolved values; `envs import --from`; `secrets set --personal` / `secrets delete --personal`
// seen by me only (another member's get, list, export and run show the shared value); a
// developer referencing production gets the error code, never the value.
import assert from 'node:assert/strict'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
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

describe('coffer references, imports and --personal (CLI, SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-refs-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let url = ''
  let owner = ''
  let dev = ''
  let other = ''
  const prod = `prod-${randomBytes(8).toString('hex')}`
  const mine = `mine-${randomBytes(8).toString('hex')}`

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
  const DEV = ['--project', 'web', '--env', 'development']
  const PROD = ['--project', 'web', '--env', 'production']

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
      const member = (email: string) =>
        ctx.committer.run(async (tx) => {
          const u = await ensureUser(tx, email, new Date())
          await addMember(tx, ws.id, u.id, 'member', new Date())
          return (await issueToken(tx, { workspaceId: ws.id, userId: u.id, name: 'cli' }, new Date())).token
        })
      dev = await member('dev@example.com')
      other = await member('other@example.com')
    } finally {
      await ctx.close()
    }
    ;({ child: server, url } = await startServer(['--data-dir', dataDir], childEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_DATA_DIR: dataDir })))
    ok(owner, ['projects', 'create', 'Web'])
    ok(owner, ['members', 'project-role', 'dev@example.com', 'developer', '--project', 'web'])
    ok(owner, ['members', 'project-role', 'other@example.com', 'developer', '--project', 'web'])
    ok(owner, ['secrets', 'set', `DB_PASSWORD=${prod}`, ...PROD])
    ok(owner, ['secrets', 'set', 'DB_PASSWORD=dev-pw', 'DB_URL=postgres://app:${DB_PASSWORD}@db/app', 'LITERAL=$${HOME}', ...DEV])
  })

  after(async () => {
    if (server) await stopChild(server)
    rmSync(work, { recursive: true, force: true })
  })

  test('get, list, export and run resolve references; --raw shows them as stored; $${ escapes', () => {
    assert.equal(ok(owner, ['secrets', 'get', 'DB_URL', ...DEV]).stdout, 'postgres://app:dev-pw@db/app')
    assert.equal(ok(owner, ['secrets', 'get', 'DB_URL', '--raw', ...DEV]).stdout, 'postgres://app:${DB_PASSWORD}@db/app')
    assert.equal(ok(owner, ['secrets', 'get', 'LITERAL', ...DEV]).stdout, '${HOME}')
    const listed = JSON.parse(ok(owner, ['secrets', 'list', '--reveal', '--raw', '--json', ...DEV]).stdout) as Array<{
      key: string
      value: string
    }>
    assert.equal(listed.find((s) => s.key === 'DB_URL')?.value, 'postgres://app:${DB_PASSWORD}@db/app')
    assert.match(ok(owner, ['export', ...DEV]).stdout, /DB_URL=.*postgres:\/\/app:dev-pw@db\/app/)
    assert.match(ok(owner, ['export', '--raw', ...DEV]).stdout, /DB_URL=.*\$\{DB_PASSWORD\}/)
    const run = ok(owner, ['run', ...DEV, '--', process.execPath, '-e', 'process.stdout.write(process.env.DB_URL)'])
    assert.equal(run.stdout, 'postgres://app:dev-pw@db/app')
    const bare = coffer(owner, ['secrets', 'list', '--raw', ...DEV])
    assert.equal(bare.status, 1)
    assert.match(bare.stderr, /--raw .*--reveal/, '--raw needs --reveal')
  })

  test('a developer referencing production gets ERR_REFERENCE_FORBIDDEN, never the value', () => {
    ok(dev, ['secrets', 'set', 'STEAL=${production.DB_PASSWORD}', ...DEV])
    for (const args of [
      ['secrets', 'get', 'STEAL', ...DEV],
      ['export', ...DEV],
      ['run', ...DEV, '--', process.execPath, '-e', 'process.stdout.write(process.env.STEAL ?? "")'],
    ]) {
      const r = coffer(dev, args)
      assert.notEqual(r.status, 0, args.join(' '))
      assert.match(r.stderr, /ERR_REFERENCE_FORBIDDEN/, args.join(' '))
      assert.ok(!r.stdout.includes(prod) && !r.stderr.includes(prod), 'never the value')
    }
    assert.equal(ok(owner, ['secrets', 'get', 'STEAL', ...DEV]).stdout, prod, 'the owner may read it')
    ok(owner, ['secrets', 'delete', 'STEAL', ...DEV])
  })

  test('envs import: staging gets development’s keys under its own', () => {
    ok(owner, ['secrets', 'set', 'DB_PASSWORD=staging-pw', '--project', 'web', '--env', 'staging'])
    ok(owner, ['envs', 'import', '--from', 'web/development', '--project', 'web', '--env', 'staging'])
    const env = ok(owner, ['export', '--format', 'json', '--project', 'web', '--env', 'staging']).stdout
    assert.deepEqual(JSON.parse(env), { DB_PASSWORD: 'staging-pw', DB_URL: 'postgres://app:dev-pw@db/app', LITERAL: '${HOME}' })
    assert.match(ok(owner, ['secrets', 'list', '--project', 'web', '--env', 'staging', '--reveal']).stdout, /FROM[\s\S]*web\/development/)
    assert.equal(coffer(dev, ['envs', 'import', '--none', '--project', 'web', '--env', 'staging']).status, 1, 'project admins only')
    ok(owner, ['envs', 'import', '--none', '--project', 'web', '--env', 'staging'])
  })

  test('--personal: only my fetches see my value; others and history never do', () => {
    const refused = coffer(dev, ['secrets', 'set', '--personal', `DB_PASSWORD=${mine}`, ...DEV])
    assert.notEqual(refused.status, 0)
    assert.match(refused.stderr, /ERR_PERSONAL_OVERRIDE_NOT_ALLOWED/)
    ok(owner, ['envs', 'personal-overrides', 'on', ...DEV])
    ok(dev, ['secrets', 'set', '--personal', `DB_PASSWORD=${mine}`, ...DEV])
    assert.equal(ok(dev, ['secrets', 'get', 'DB_PASSWORD', ...DEV]).stdout, mine)
    assert.equal(ok(dev, ['secrets', 'get', 'DB_URL', ...DEV]).stdout, `postgres://app:${mine}@db/app`, 'references resolve through it')
    const run = ok(dev, ['run', ...DEV, '--', process.execPath, '-e', 'process.stdout.write(process.env.DB_PASSWORD)'])
    assert.equal(run.stdout, mine)
    assert.match(ok(dev, ['secrets', 'list', ...DEV]).stdout, /DB_PASSWORD.*yes \(yours\)/)

    for (const who of [other, owner]) {
      const outputs = [
        ok(who, ['secrets', 'get', 'DB_PASSWORD', ...DEV]).stdout,
        ok(who, ['secrets', 'list', '--reveal', ...DEV]).stdout,
        ok(who, ['secrets', 'list', '--json', ...DEV]).stdout,
        ok(who, ['secrets', 'history', 'DB_PASSWORD', '--reveal', ...DEV]).stdout,
        ok(who, ['export', ...DEV]).stdout,
        ok(who, ['run', ...DEV, '--', process.execPath, '-e', 'process.stdout.write(process.env.DB_PASSWORD)']).stdout,
      ]
      assert.equal(outputs[0], 'dev-pw')
      assert.equal(outputs[5], 'dev-pw')
      for (const o of outputs) {
        assert.ok(!o.includes(mine), 'another member never sees my override')
        assert.ok(!o.includes('yours') && !o.includes('overridden'), 'nor that I hold one')
      }
    }
    assert.ok(!ok(dev, ['secrets', 'history', 'DB_PASSWORD', '--reveal', ...DEV]).stdout.includes(mine), 'not a version')

    ok(dev, ['secrets', 'delete', '--personal', 'DB_PASSWORD', ...DEV])
    assert.equal(ok(dev, ['secrets', 'get', 'DB_PASSWORD', ...DEV]).stdout, 'dev-pw')
    assert.equal(ok(owner, ['secrets', 'get', 'DB_PASSWORD', ...DEV]).stdout, 'dev-pw', 'the shared secret is untouched')
  })
})
