// `coffer connections …` and `coffer proxy` through the built CLI against a real server
// (SQLite) and a real authorization server with an API behind it (oidc-provider, loopback):
// create (the client secret from stdin, never echoed), list, connect the app through the
// browser flow (the URL printed, the provider's redirect followed here), then `coffer proxy
// --as app` forwarding a plain HTTP call to the provider's API with the app's token.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'
import { atProvider, startThirdParty, type ThirdParty } from '../helpers/oauth-provider.js'

const PUBLIC_URL = 'http://coffer.test'

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer connections and coffer proxy (CLI, SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-conn-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let proxy: ChildProcess | undefined
  let tp: ThirdParty
  let url = ''
  let owner = ''

  const coffer = (args: string[], input = ''): Result => {
    const env = childEnv({ COFFER_URL: url, COFFER_TOKEN: owner, NO_COLOR: '1', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' })
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, input, encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (args: string[], input = ''): Result => {
    const r = coffer(args, input)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }

  before(async () => {
    ensureBuilt()
    tp = await startThirdParty(PUBLIC_URL)
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
        COFFER_PUBLIC_URL: PUBLIC_URL,
      }),
    ))
  })

  after(async () => {
    if (proxy && proxy.exitCode === null) await stopChild(proxy)
    if (server) await stopChild(server)
    await tp?.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('create reads the client secret from stdin; list never shows it', () => {
    const args = ['connections', 'create', 'tracker', '--authorize-url', `${tp.issuer}/auth`, '--token-url', `${tp.issuer}/token`]
    const more = ['--client-id', tp.clientId, '--scope', 'openid offline_access api', '--api-base', tp.apiBase, '--allow', 'GET /v1/*']
    const missing = coffer([...args, ...more])
    assert.notEqual(missing.status, 0, 'no secret on stdin, no terminal: refused')
    const made = ok([...args, ...more, '--client-secret-stdin', '--json'], `${tp.clientSecret}\n`)
    assert.equal(JSON.parse(made.stdout).name, 'tracker')
    const list = ok(['connections', 'list'])
    assert.match(list.stdout, /tracker/)
    const json = ok(['connections', 'list', '--json'])
    assert.equal(JSON.parse(json.stdout)[0].app, null)
    for (const r of [made, list, json]) assert.ok(!(r.stdout + r.stderr).includes(tp.clientSecret))
  })

  test('connect prints the provider URL; after the browser flow the app is connected', async () => {
    const r = ok(['connections', 'connect', 'tracker', '--no-browser', '--no-wait', '--json'])
    const { url: authUrl } = JSON.parse(r.stdout) as { url: string }
    const back = new URL(await atProvider(authUrl, 'service-account', PUBLIC_URL))
    const cb = await fetch(`${url}${back.pathname}${back.search}`)
    assert.equal(cb.status, 200)
    const list = JSON.parse(ok(['connections', 'list', '--json']).stdout)
    assert.equal(list[0].app.status, 'connected')
  })

  test('coffer proxy --as app forwards a local call to the API with the app token', async () => {
    proxy = spawn(process.execPath, [BIN, 'proxy', 'tracker', '--as', 'app', '--json'], {
      cwd: work,
      env: childEnv({ COFFER_URL: url, COFFER_TOKEN: owner, NO_COLOR: '1', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const local = await new Promise<string>((resolve, reject) => {
      let out = ''
      proxy!.stdout!.on('data', (c: Buffer) => {
        out += c.toString()
        try {
          resolve((JSON.parse(out) as { url: string }).url)
        } catch {
          // not all of it yet
        }
      })
      proxy!.once('exit', (code) => reject(new Error(`coffer proxy exited ${code}`)))
    })
    const res = await fetch(`${local}/v1/me?page=2`, { headers: { authorization: 'Bearer not-forwarded' } })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { sub: string; url: string }
    assert.deepEqual(body, { sub: 'service-account', method: 'GET', url: '/api/v1/me?page=2' })
    assert.equal(res.headers.get('set-cookie'), null)
    const refused = await fetch(`${local}/admin`)
    assert.equal(refused.status, 403)
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_RELAY_REFUSED')
    await stopChild(proxy)
  })

  test('unlink says there was nothing to unlink; delete removes the connection', () => {
    assert.match(ok(['connections', 'unlink', 'tracker']).stderr, /no link/)
    const missing = coffer(['connections', 'delete', 'nope'])
    assert.notEqual(missing.status, 0)
    assert.match(missing.stderr, /No connection named nope/)
    ok(['connections', 'delete', 'tracker'])
    assert.deepEqual(JSON.parse(ok(['connections', 'list', '--json']).stdout), [])
  })
})
