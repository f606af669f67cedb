// The CLI with workspace integrations and invitations, as a user drives it: the built
// `coffer` binary against a real listening server. A service token scoped to one environment
// runs `coffer run` there and nowhere else; a machine identity's client credentials become a
// COFFER_TOKEN; a revoked one stops at once; an invitation prints its accept link.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { waitListening } from '../helpers/child-server.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer CLI with service tokens, machine identities and invitations', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-cli-int-'))
  const dataDir = join(work, 'data')
  const cwd = join(work, 'app')
  let server: ChildProcess
  let url = ''
  let ownerToken = ''
  const prodValue = `prod-${randomBytes(12).toString('hex')}`
  const stagingValue = `staging-${randomBytes(12).toString('hex')}`

  const env = (token: string, extra: Record<string, string> = {}) => {
    const e: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL') e[k] = v
    e.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent'
    return { ...e, COFFER_URL: url, COFFER_TOKEN: token, NO_COLOR: '1', ...extra }
  }
  const coffer = (token: string, args: string[], extra: Record<string, string> = {}): Result => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: env(token, extra), encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (token: string, args: string[], extra?: Record<string, string>): Result => {
    const r = coffer(token, args, extra)
    assert.equal(r.status, 0, `coffer ${args.slice(0, 2).join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }
  const printEnv = (name: string) => ['--', process.execPath, '-e', `process.stdout.write(process.env.${name} ?? 'unset')`]

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
    mkdirSync(cwd, { recursive: true })
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'owner@example.com', '--workspace', 'Acme', '--json'],
      { encoding: 'utf8', env: env('') },
    )
    assert.equal(init.status, 0, init.stderr)
    ownerToken = (JSON.parse(init.stdout) as { token: string }).token
    server = spawn(process.execPath, [BIN, 'server', '--data-dir', dataDir, '--port', '0'], {
      env: { ...env(''), COFFER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    url = await waitListening(server)
    ok(ownerToken, ['projects', 'create', 'Shop'])
    ok(ownerToken, ['secrets', 'set', `API_KEY=${prodValue}`, '--project', 'shop', '--env', 'production'])
    ok(ownerToken, ['secrets', 'set', `API_KEY=${stagingValue}`, '--project', 'shop', '--env', 'staging'])
  })

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server.once('exit', r))
    }
    rmSync(work, { recursive: true, force: true })
  })

  test('a service token scoped to production runs `coffer run` there, and nowhere else', () => {
    const created = ok(ownerToken, [
      'token',
      'create-service',
      'deploy',
      '--project',
      'shop',
      '--env',
      'production',
      '--access',
      'read',
      '--json',
    ])
    const svc = (JSON.parse(created.stdout) as { token: string }).token
    assert.match(svc, /^coffer_svc_/)
    const run = ok(svc, ['run', '--project', 'shop', '--env', 'production', ...printEnv('API_KEY')])
    assert.ok(run.stdout === prodValue, "the service token reveals production's value into the child")
    const other = coffer(svc, ['run', '--project', 'shop', '--env', 'staging', ...printEnv('API_KEY')])
    assert.notEqual(other.status, 0)
    assert.match(other.stderr, /ERR_NOT_FOUND/)
    assert.ok(!other.stdout.includes(stagingValue))
    const write = coffer(svc, ['secrets', 'set', 'API_KEY=overwritten', '--project', 'shop', '--env', 'production'])
    assert.notEqual(write.status, 0)
    assert.match(write.stderr, /ERR_FORBIDDEN/)
    const tokens = coffer(svc, ['token', 'list'])
    assert.match(tokens.stderr, /ERR_FORBIDDEN/, 'an integration cannot manage tokens')
    const who = ok(svc, ['whoami'])
    assert.match(who.stdout, /^service deploy/)
    const listed = ok(ownerToken, ['token', 'list-services', '--json'])
    const id = (JSON.parse(listed.stdout) as Array<{ id: string; name: string }>).find((t) => t.name === 'deploy')!.id
    assert.ok(!listed.stdout.includes(svc.slice(11, 43)))
    ok(ownerToken, ['token', 'revoke-service', id])
    const replay = coffer(svc, ['run', '--project', 'shop', '--env', 'production', ...printEnv('API_KEY')])
    assert.notEqual(replay.status, 0)
    assert.match(replay.stderr, /ERR_UNAUTHENTICATED/)
  })

  test('a machine identity: client credentials → COFFER_TOKEN → coffer run; revoked, it stops', () => {
    const created = ok(ownerToken, [
      'machine',
      'create',
      'ci',
      '--project',
      'shop',
      '--env',
      'staging',
      '--access',
      'read',
      '--ttl',
      '900',
      '--json',
    ])
    const m = JSON.parse(created.stdout) as { clientId: string; clientSecret: string; machine: { id: string } }
    assert.match(m.clientSecret, /^coffer_mcs_/)
    const creds = { COFFER_CLIENT_ID: m.clientId, COFFER_CLIENT_SECRET: m.clientSecret }
    const tok = ok('', ['machine', 'token'], creds).stdout.trim()
    assert.match(tok, /^coffer_sat_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
    const run = ok(tok, ['run', '--project', 'shop', '--env', 'staging', ...printEnv('API_KEY')])
    assert.ok(run.stdout === stagingValue, "the machine token runs with staging's secrets")
    assert.match(ok(tok, ['whoami']).stdout, /^machine ci/)
    assert.match(coffer(tok, ['run', '--project', 'shop', '--env', 'production', ...printEnv('API_KEY')]).stderr, /ERR_NOT_FOUND/)
    assert.ok(ok(ownerToken, ['machine', 'list']).stdout.includes(m.clientId))
    ok(ownerToken, ['machine', 'revoke', m.machine.id])
    assert.match(
      coffer(tok, ['run', '--project', 'shop', '--env', 'staging', ...printEnv('API_KEY')]).stderr,
      /ERR_UNAUTHENTICATED/,
      'the live access token died with its identity',
    )
    assert.match(coffer('', ['machine', 'token'], creds).stderr, /ERR_UNAUTHENTICATED/, 'the client secret no longer exchanges')
  })

  test('invite prints the accept link; members lists the people', () => {
    const inv = ok(ownerToken, ['invite', 'create', 'newcomer@example.com', '--project', 'shop', '--project-role', 'viewer'])
    assert.match(inv.stdout, /\/invite\?token=coffer_inv_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}/)
    assert.match(inv.stderr, /Mail is not set up/)
    const listed = ok(ownerToken, ['invite', 'list', '--json'])
    assert.equal(
      (JSON.parse(listed.stdout) as Array<{ email: string; state: string }>).find((i) => i.email === 'newcomer@example.com')?.state,
      'pending',
    )
    assert.match(ok(ownerToken, ['members', 'list']).stdout, /owner@example\.com\s+owner/)
    assert.match(ok(ownerToken, ['envs', 'restrict', '--project', 'shop', '--env', 'staging']).stderr, /staging is restricted/)
    assert.match(ok(ownerToken, ['envs', 'restrict', '--off', '--project', 'shop', '--env', 'staging']).stderr, /staging is unrestricted/)
    const envs = JSON.parse(ok(ownerToken, ['envs', 'list', '--project', 'shop', '--json']).stdout) as Array<{
      slug: string
      restricted: boolean
    }>
    assert.deepEqual(Object.fromEntries(envs.map((e) => [e.slug, e.restricted])), { development: false, staging: false, production: true })
  })

  test('the auditor role: invite and set-role take it; an auditor takes no project', () => {
    const inv = ok(ownerToken, ['invite', 'create', 'reviewer@example.com', '--role', 'auditor'])
    assert.match(inv.stderr, /Invited reviewer@example\.com as auditor;/)
    const withProject = coffer(ownerToken, ['invite', 'create', 'reviewer@example.com', '--role', 'auditor', '--project', 'shop'])
    assert.notEqual(withProject.status, 0)
    assert.match(withProject.stderr, /ERR_AUDITOR_PROJECT_ROLE/)
    // The CLI passes `auditor` on; the server keeps its last-Owner rule.
    const last = coffer(ownerToken, ['members', 'set-role', 'owner@example.com', 'auditor'])
    assert.notEqual(last.status, 0)
    assert.match(last.stderr, /ERR_LAST_OWNER/)
    const bogus = coffer(ownerToken, ['members', 'set-role', 'owner@example.com', 'superuser'])
    assert.notEqual(bogus.status, 0)
    assert.match(bogus.stderr, /owner, admin, member or auditor/)
    assert.match(coffer(ownerToken, ['invite', 'create', 'x@example.com', '--role', 'root']).stderr, /owner, admin, member or auditor/)
    assert.match(coffer('', ['members', 'set-role', '--help']).stdout, /auditor/)
  })
})
