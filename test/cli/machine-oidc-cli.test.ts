// OIDC federation tried as a CI engineer would, with the built `coffer` against a real server
// (SQLite) and a loopback OIDC issuer: create an identity that trusts the issuer for one
// repository and branch, exchange a workload's ID token with `coffer machine token
// --oidc-token` (and COFFER_OIDC_TOKEN), run `coffer run` with the result, see the exchange
// and a refused token in `coffer audit log`; add, list and remove rules.
// @NOTE the CLI runs as an async child: the issuer answers from this process's event loop.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'
import { startIssuer, type TestIssuer } from '../helpers/oidc-issuer.js'

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer machine … --oidc (CLI, SQLite server, loopback issuer)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-oidc-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let issuer: TestIssuer
  let url = ''
  let owner = ''
  let machineId = ''
  const value = `prod-${randomBytes(12).toString('hex')}`
  const SUB = 'repo:acme/web:ref:refs/heads/main'

  const coffer = (token: string, args: string[], extra: Record<string, string> = {}) =>
    new Promise<Result>((resolve, reject) => {
      const env = childEnv({
        COFFER_URL: url,
        COFFER_TOKEN: token,
        NO_COLOR: '1',
        DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
        ...extra,
      })
      const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d))
      child.stderr.on('data', (d: Buffer) => (stderr += d))
      child.on('error', reject)
      child.on('close', (status) => resolve({ status, stdout, stderr }))
    })
  const ok = async (token: string, args: string[], extra?: Record<string, string>) => {
    const r = await coffer(token, args, extra)
    assert.equal(r.status, 0, `coffer ${args.slice(0, 2).join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }
  const printEnv = ['--', process.execPath, '-e', "process.stdout.write(process.env.DATABASE_URL ?? 'unset')"]

  before(async () => {
    ensureBuilt()
    issuer = await startIssuer()
    const init = await coffer('', ['init', '--data-dir', dataDir, '--email', 'owner@example.com', '--json'])
    assert.equal(init.status, 0, init.stderr)
    owner = (JSON.parse(init.stdout) as { token: string }).token
    ;({ child: server, url } = await startServer(
      ['--data-dir', dataDir],
      childEnv({
        COFFER_LOG_LEVEL: 'warn',
        COFFER_DATA_DIR: dataDir,
        COFFER_OUTBOUND_ALLOW: '127.0.0.1/32',
        COFFER_AUDIT_MERGE_DELAY: '0.1',
      }),
    ))
    await ok(owner, ['projects', 'create', 'Web'])
    await ok(owner, ['secrets', 'set', `DATABASE_URL=${value}`, '--project', 'web', '--env', 'production'])
  })

  after(async () => {
    if (server) await stopChild(server)
    await issuer?.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('create an identity trusting the issuer for one repository and branch; exchange; coffer run; audit log', async () => {
    const created = await ok(owner, [
      'machine',
      'create',
      'web-deploy',
      '--project',
      'web',
      '--env',
      'production',
      '--access',
      'read',
      '--oidc-issuer',
      issuer.url,
      '--oidc-audience',
      'coffer',
      '--oidc-claim',
      `sub=${SUB}`,
      '--oidc-claim',
      'repository_owner=acme',
    ])
    const id = /^COFFER_CLIENT_ID=([0-9a-f-]{36})$/m.exec(created.stdout)?.[1]
    assert.ok(id, created.stdout)
    assert.doesNotMatch(created.stdout, /COFFER_CLIENT_SECRET/, 'no client secret for an identity that trusts an issuer')
    machineId = id
    // As a pipeline does: the ID token in a flag, or in COFFER_OIDC_TOKEN with COFFER_MACHINE_ID.
    const idToken = await issuer.token({ repository_owner: 'acme' })
    const tok = (await ok('', ['machine', 'token', '--id', id, '--oidc-token', idToken])).stdout.trim()
    assert.match(tok, /^coffer_sat_/)
    const json = JSON.parse((await ok('', ['machine', 'token', '--json'], { COFFER_MACHINE_ID: id, COFFER_OIDC_TOKEN: idToken })).stdout)
    assert.match(json.accessToken, /^coffer_sat_/)
    assert.ok(json.expiresIn > 0 && json.expiresIn <= 3600)
    const run = await ok(tok, ['run', '--project', 'web', '--env', 'production', ...printEnv])
    assert.equal(run.stdout, value, 'the exchanged token runs with production’s secrets')
    // Another repository's token: refused with the one code, nothing on stdout.
    const evil = await coffer('', [
      'machine',
      'token',
      '--id',
      id,
      '--oidc-token',
      await issuer.token({ sub: 'repo:evil/web:ref:refs/heads/main', repository_owner: 'evil' }),
    ])
    assert.notEqual(evil.status, 0)
    assert.match(evil.stderr, /ERR_OIDC_TOKEN_REJECTED/)
    assert.equal(evil.stdout, '')
    // The audit log names the exchanges (issuer, subject, rule) and the refusal with its failed check.
    let entries: Array<{ action: string; actor: { type: string }; details: string }> = []
    for (let i = 0; i < 40; i++) {
      entries = JSON.parse((await ok(owner, ['audit', 'log', '--action', 'machine.*', '--json'])).stdout).entries
      if (entries.some((e) => e.action === 'machine.oidc.refused')) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const issued = entries.filter((e) => e.action === 'machine.token.issue')
    assert.equal(issued.length, 2)
    const d = JSON.parse(issued[0]!.details)
    assert.deepEqual([d.method, d.issuer, d.subject, issued[0]!.actor.type], ['oidc', issuer.url, SUB, 'machine'])
    const refusal = entries.find((e) => e.action === 'machine.oidc.refused')
    assert.ok(refusal, 'the refused exchange is in the log')
    assert.equal(JSON.parse(refusal.details).check, 'claims')
    assert.ok(entries.some((e) => e.action === 'machine.oidc.trust'))
    for (const e of entries) assert.ok(!e.details.includes(idToken.split('.')[2]!), 'no ID token in the log')
    // In the table, a refused caller is anonymous, naming only the identity it claimed.
    const table = (await ok(owner, ['audit', 'log', '--action', 'machine.oidc.refused'])).stdout
    assert.match(table, /anonymous \(as machine web-deploy\)\s+machine\.oidc\.refused/)
  })

  test('trust, rules and untrust on an existing identity; usage errors are clear', async () => {
    await ok(owner, [
      'machine',
      'trust',
      machineId,
      '--oidc-issuer',
      issuer.url,
      '--oidc-audience',
      'https://coffer.example',
      '--oidc-claim',
      'project_path=acme/*',
    ])
    const rules = JSON.parse((await ok(owner, ['machine', 'rules', machineId, '--json'])).stdout) as Array<{
      id: string
      claims: Record<string, string>
    }>
    assert.equal(rules.length, 2)
    const table = (await ok(owner, ['machine', 'rules', machineId])).stdout
    assert.match(table, /project_path=acme\/\*/)
    const gl = await issuer.token({ aud: 'https://coffer.example', sub: 'project_path:acme/infra', project_path: 'acme/infra' })
    assert.match((await ok('', ['machine', 'token', '--id', machineId, '--oidc-token', gl])).stdout, /^coffer_sat_/)
    await ok(owner, ['machine', 'untrust', machineId, rules[1]!.id])
    const after = await coffer('', ['machine', 'token', '--id', machineId, '--oidc-token', gl])
    assert.match(after.stderr, /ERR_OIDC_TOKEN_REJECTED/)
    const noClaim = await coffer(owner, ['machine', 'trust', machineId, '--oidc-issuer', issuer.url, '--oidc-audience', 'x'])
    assert.notEqual(noClaim.status, 0)
    assert.match(noClaim.stderr, /--oidc-claim/)
    const badClaim = await coffer(owner, [
      'machine',
      'trust',
      machineId,
      '--oidc-issuer',
      issuer.url,
      '--oidc-audience',
      'x',
      '--oidc-claim',
      'sub',
    ])
    assert.match(badClaim.stderr, /NAME=VALUE/)
    const noId = await coffer('', ['machine', 'token', '--oidc-token', gl])
    assert.match(noId.stderr, /--id/)
  })
})
