// `coffer aws …` and `coffer run --aws ROLE` through the built CLI against a real server
// (SQLite). AWS is unreachable from here: the server's STS endpoint (COFFER_AWS_STS_ENDPOINT)
// is a local STS stand-in (test/helpers/sts-stand-in.ts) that verifies each AssumeRole
// request's SigV4 signature against the key the server process was given through the AWS
// SDK's default chain (its environment), the role, its external ID and the session length.
// The CLI processes and the child of `coffer run` get no AWS key of their own: what they see
// came from Coffer.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'
import { awsEnvFor, startStsStandIn, type StsStandIn } from '../helpers/sts-stand-in.js'

const ROLE_ARN = 'arn:aws:iam::444455556666:role/coffer-read-only'

describe('coffer aws (CLI, SQLite server, STS stand-in)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-aws-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let sts: StsStandIn | undefined
  let url = ''
  let owner = ''
  const scope = ['--project', 'shop', '--env', 'development']
  // Nothing of this machine's AWS setup reaches the CLI or its child.
  const noAws = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('AWS_'))
      .map((k) => [k, '']),
  )

  const coffer = (args: string[], extra: Record<string, string> = {}) => {
    const env = childEnv({
      ...noAws,
      COFFER_URL: url,
      COFFER_TOKEN: owner,
      NO_COLOR: '1',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
      ...extra,
    })
    for (const [k, v] of Object.entries(env)) if (v === '') delete env[k]
    // Not spawnSync: the STS stand-in answers from this process, which must keep running.
    return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
      child.on('error', reject)
      child.on('close', (status) => {
        clearTimeout(t)
        resolve({ status, stdout, stderr })
      })
    })
  }
  const ok = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await coffer(args, extra)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }

  before(async () => {
    ensureBuilt()
    sts = await startStsStandIn()
    const init = spawnSync(process.execPath, [BIN, 'init', '--data-dir', dataDir, '--email', 'owner@example.com', '--json'], {
      encoding: 'utf8',
      env: childEnv({}),
    })
    assert.equal(init.status, 0, init.stderr)
    owner = (JSON.parse(init.stdout) as { token: string }).token
    ;({ child: server, url } = await startServer(
      ['--data-dir', dataDir],
      childEnv({
        COFFER_LOG_LEVEL: 'warn',
        COFFER_DATA_DIR: dataDir,
        COFFER_AWS_PRINCIPAL_ARN: 'arn:aws:iam::111122223333:role/coffer-server',
        ...awsEnvFor(sts),
      }),
    ))
  })

  after(async () => {
    if (server) await stopChild(server)
    await sts?.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('external ID, template, create, creds, run --aws, rotation refused, delete', async () => {
    await ok(['projects', 'create', 'Shop'])
    const externalId = (await ok(['aws', 'external-id'])).stdout.trim()
    assert.match(externalId, /^coffer-[0-9a-f]{40}$/)
    assert.equal(JSON.parse((await ok(['aws', 'external-id', '--json'])).stdout).externalId, externalId)

    const file = join(work, 'coffer-role.json')
    await ok(['aws', 'template', '--out', file])
    const template = JSON.parse(readFileSync(file, 'utf8'))
    assert.equal(template.Parameters.ExternalId.Default, externalId)
    assert.equal(template.Parameters.CofferPrincipalArn.Default, 'arn:aws:iam::111122223333:role/coffer-server')
    const again = await coffer(['aws', 'template', '--out', file])
    assert.equal(again.status, 1)
    assert.match(again.stderr, /already exists/)
    assert.deepEqual(JSON.parse((await ok(['aws', 'template'])).stdout), template)

    // The stack is "deployed": the stand-in's role trusts Coffer with this external ID.
    sts!.roles.set(ROLE_ARN, { externalId })
    const badArn = await coffer(['aws', 'create', 'x', '--role-arn', 'arn:aws:s3:::bucket', ...scope])
    assert.notEqual(badArn.status, 0)
    assert.match(badArn.stderr, /ERR_VALIDATION/)
    await ok(['aws', 'create', 'readonly', '--role-arn', ROLE_ARN, '--region', 'eu-west-1', ...scope])
    assert.match(
      (await ok(['aws', 'list', ...scope])).stdout,
      /readonly\s+arn:aws:iam::444455556666:role\/coffer-read-only\s+eu-west-1\s+3600s/,
    )

    const out = (await ok(['aws', 'creds', 'readonly', '--duration', '900', ...scope])).stdout
    const vars = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => /^export ([A-Z_]+)='(.*)'$/.exec(l)!.slice(1, 3) as [string, string]),
    )
    assert.equal(vars.AWS_ACCESS_KEY_ID, sts!.issued.at(-1)!.accessKeyId)
    assert.equal(vars.AWS_SECRET_ACCESS_KEY, sts!.issued.at(-1)!.secretAccessKey)
    assert.equal(vars.AWS_SESSION_TOKEN, sts!.issued.at(-1)!.sessionToken)
    assert.equal(vars.AWS_REGION, 'eu-west-1')
    assert.ok(Date.parse(vars.AWS_CREDENTIAL_EXPIRATION!) <= Date.now() + 900_000)
    assert.equal(sts!.requests.at(-1)!.params.DurationSeconds, '900')
    // --json: the AWS CLI's credential_process shape.
    const cp = JSON.parse((await ok(['aws', 'creds', 'readonly', '--json', ...scope])).stdout)
    assert.deepEqual(Object.keys(cp), ['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration'])
    assert.equal(cp.Version, 1)

    // coffer run --aws: the child sees the session, which expires within the hour.
    const child = (
      await ok([
        'run',
        '--aws',
        'readonly',
        ...scope,
        '--',
        process.execPath,
        '-e',
        'const e = process.env; console.log(JSON.stringify({id: e.AWS_ACCESS_KEY_ID, secret: e.AWS_SECRET_ACCESS_KEY, token: e.AWS_SESSION_TOKEN, region: e.AWS_REGION, exp: e.AWS_CREDENTIAL_EXPIRATION, coffer: e.COFFER_TOKEN ?? null}))',
      ])
    ).stdout
    const seen = JSON.parse(child.trim().split('\n').pop()!) as Record<string, string | null>
    const issued = sts!.issued.at(-1)!
    assert.deepEqual(
      { id: seen.id, secret: seen.secret, token: seen.token, region: seen.region },
      { id: issued.accessKeyId, secret: issued.secretAccessKey, token: issued.sessionToken, region: 'eu-west-1' },
    )
    assert.notEqual(seen.id, vars.AWS_ACCESS_KEY_ID, 'a session of its own')
    const left = Date.parse(seen.exp!) - Date.now()
    assert.ok(left > 0 && left <= 3600_000, 'expires within the hour')
    assert.equal(seen.coffer, null, 'the child does not get the Coffer token')
    assert.match(sts!.requests.at(-1)!.params.RoleSessionName!, /^coffer-owner@example\.com$/)

    // Rotating the external ID: the stack still holds the old one, so STS refuses — a clear
    // one-line error, and `coffer run` starts nothing.
    const rotated = (await ok(['aws', 'external-id', '--rotate'])).stdout.trim()
    assert.notEqual(rotated, externalId)
    const refused = await coffer(['aws', 'creds', 'readonly', ...scope])
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /^coffer: STS refused to let Coffer assume .*\(ERR_AWS_ASSUME_ROLE\)\n$/)
    assert.ok(!refused.stderr.includes(rotated) && !refused.stderr.includes(externalId))
    const marker = join(work, 'started')
    const notRun = await coffer([
      'run',
      '--aws',
      'readonly',
      ...scope,
      '--',
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`,
    ])
    assert.notEqual(notRun.status, 0)
    assert.match(notRun.stderr, /ERR_AWS_ASSUME_ROLE/)
    assert.throws(() => readFileSync(marker), 'the command did not start')

    await ok(['aws', 'delete', 'readonly', ...scope])
    assert.match((await coffer(['aws', 'creds', 'readonly', ...scope])).stderr, /ERR_NOT_FOUND/)
  })
})
