// `coffer webhooks …` through the built CLI against a real server (SQLite), with a real
// receiver on loopback: create (the secret printed once, `--json` as the contract names it),
// list, a secret change delivered, the delivery log, redeliver, verify a received message
// with the CLI, delete.
import assert from 'node:assert/strict'
import { type ChildProcess, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer webhooks (CLI, SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-wh-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let receiver: Server | undefined
  const got: Array<{ headers: IncomingMessage['headers']; body: string }> = []
  let hook = ''
  let url = ''
  let owner = ''

  const coffer = (args: string[], extra: Record<string, string> = {}, input = ''): Result => {
    const env = childEnv({
      COFFER_URL: url,
      COFFER_TOKEN: owner,
      NO_COLOR: '1',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
      ...extra,
    })
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, input, encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (args: string[], extra: Record<string, string> = {}, input = ''): Result => {
    const r = coffer(args, extra, input)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }

  before(async () => {
    ensureBuilt()
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() })
        res.end('ok')
      })
    })
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', r))
    hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/coffer`
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
        COFFER_OUTBOUND_ALLOW: '127.0.0.1/32',
        COFFER_AUDIT_MERGE_DELAY: '0.1',
      }),
    ))
  })

  after(async () => {
    if (server) await stopChild(server)
    await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()))
    rmSync(work, { recursive: true, force: true })
  })

  test('create, deliver, log, redeliver, verify, delete', async () => {
    // SSRF: the metadata service is refused with its code, one line.
    const refused = coffer(['webhooks', 'create', 'http://169.254.169.254/', '--event', 'secret.updated'])
    assert.notEqual(refused.status, 0)
    assert.match(refused.stderr, /ERR_OUTBOUND_REFUSED/)
    const noEvent = coffer(['webhooks', 'create', hook])
    assert.notEqual(noEvent.status, 0)
    assert.match(noEvent.stderr, /--event/)

    const created = JSON.parse(ok(['webhooks', 'create', hook, '--event', 'secret.created', '--event', 'secret.updated', '--json']).stdout)
    assert.match(created.id, /^[0-9a-f-]{36}$/)
    assert.match(created.secret, /^whsec_/)
    const plain = ok(['webhooks', 'create', hook, '--event', 'secret.deleted,key.rotated'])
    assert.match(plain.stdout.trim(), /^whsec_\S+$/, 'the secret alone on stdout')
    const listed = ok(['webhooks', 'list'])
    assert.match(listed.stdout, new RegExp(created.id))
    assert.ok(!listed.stdout.includes(created.secret.slice(6)), 'list never shows a secret')

    ok(['projects', 'create', 'Web'])
    ok(['secrets', 'set', 'API_KEY=not-in-any-webhook', '--project', 'web', '--env', 'development'])
    for (let i = 0; i < 200 && got.length === 0; i++) await sleep(50)
    assert.equal(got.length, 1)
    const msg = got[0]!
    assert.equal(JSON.parse(msg.body).type, 'secret.created')
    assert.ok(!msg.body.includes('not-in-any-webhook'))

    // Verify the received message with the CLI, as a receiver's developer would.
    const body = join(work, 'body.json')
    writeFileSync(body, msg.body)
    const headers = ['--id', String(msg.headers['webhook-id']), '--timestamp', String(msg.headers['webhook-timestamp'])]
    const sig = String(msg.headers['webhook-signature'])
    const valid = ok(['webhooks', 'verify', body, ...headers, '--signature', sig, '--json'], { COFFER_WEBHOOK_SECRET: created.secret })
    assert.deepEqual(JSON.parse(valid.stdout), { valid: true })
    const tampered = coffer(
      ['webhooks', 'verify', '-', ...headers, '--signature', sig, '--json'],
      { COFFER_WEBHOOK_SECRET: created.secret },
      msg.body.replace('API_KEY', 'API_KEX'),
    )
    assert.equal(tampered.status, 1)
    assert.equal(JSON.parse(tampered.stdout).valid, false)
    assert.match(tampered.stderr, /Invalid: No matching signature/)
    const wrongSecret = coffer(['webhooks', 'verify', body, ...headers, '--signature', sig], {
      COFFER_WEBHOOK_SECRET: JSON.parse(ok(['webhooks', 'rotate-secret', created.id, '--overlap-hours', '0', '--json']).stdout).secret,
    })
    assert.equal(wrongSecret.status, 1)

    // The delivery log, then a redelivery with the same id.
    let log: Array<{ id: string; status: string; attempts: number; lastStatus: number }> = []
    for (let i = 0; i < 100; i++) {
      log = JSON.parse(ok(['webhooks', 'deliveries', created.id, '--json']).stdout)
      if (log[0]?.status === 'delivered') break
      await sleep(50)
    }
    assert.equal(log[0]!.status, 'delivered')
    assert.equal(log[0]!.lastStatus, 200)
    const table = ok(['webhooks', 'deliveries', created.id])
    assert.match(table.stdout, /MESSAGE\s+EVENT\s+STATUS/)
    assert.match(table.stdout, /secret\.created\s+delivered/)
    ok(['webhooks', 'redeliver', log[0]!.id])
    for (let i = 0; i < 200 && got.length < 2; i++) await sleep(50)
    assert.equal(got[1]?.headers['webhook-id'], log[0]!.id)

    ok(['webhooks', 'delete', created.id])
    assert.ok(!ok(['webhooks', 'list']).stdout.includes(created.id))
    const gone = coffer(['webhooks', 'deliveries', created.id])
    assert.match(gone.stderr, /ERR_NOT_FOUND/)
  })
})
