// TLS termination with a certificate this test makes (openssl): TLS 1.2 and 1.3 clients are
// served, a client that speaks at most TLS 1.1 is refused by the server, HSTS is sent, and
// the CLI reaches the server over https:// trusting a private CA (COFFER_CA_CERT). Bad
// certificate settings stop start-up with ERR_CONFIG naming the setting.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SecureVersion } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { CofferClient } from '../../src/client/client.js'
import { bootstrapWorkspace, createContext, type AppContext } from '../../src/context.js'
import { ConfigError } from '../../src/errors.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { linkUrl } from '../../src/identity/email-links.js'
import { buildApp } from '../../src/server/app.js'
import { loadTls } from '../../src/server/tls.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr}`)
}

/** A private CA and a server certificate for 127.0.0.1/localhost signed by it. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string; otherKey: string } {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Coffer Test CA',
    ],
    dir,
  )
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  )
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  )
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'other.key'], dir)
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), otherKey: join(dir, 'other.key') }
}

/** Runs the built CLI without blocking this process's event loop. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', (status) => {
      clearTimeout(t)
      resolve({ status, stdout, stderr })
    })
  })
}

interface Hello {
  status?: number
  headers?: Record<string, unknown>
  protocol?: string
  error?: string
}

/** One GET over TLS with the client's protocol range pinned. */
function hello(url: string, ca: string, min: SecureVersion, max: SecureVersion, ciphers?: string): Promise<Hello> {
  return new Promise((resolve) => {
    const req = request(url, { ca: readCa(ca), minVersion: min, maxVersion: max, ...(ciphers ? { ciphers } : {}), agent: false }, (res) => {
      const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol() ?? undefined
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, protocol }))
    })
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: `${e.code ?? ''} ${e.message}` }))
    req.end()
  })
}
const cas = new Map<string, Buffer>()
function readCa(path: string): Buffer {
  if (!cas.has(path)) cas.set(path, Buffer.from(spawnSync('cat', [path]).stdout))
  return cas.get(path)!
}

describe('TLS termination', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-tls-'))
  let certs: ReturnType<typeof makeCertificates>
  let ctx: AppContext
  let app: FastifyInstance
  let url = ''
  let token = ''

  before(async () => {
    certs = makeCertificates(dir)
    const e = readEnv({
      COFFER_DATA_DIR: join(dir, 'data'),
      COFFER_LOG_LEVEL: 'silent',
      COFFER_TLS_CERT: certs.cert,
      COFFER_TLS_KEY: certs.key,
    })
    ctx = await createContext(buildConfig(e), buildSecrets(e))
    app = await buildApp(ctx)
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    assert.match(address, /^https:\/\//)
    url = address
    token = (await bootstrapWorkspace(ctx, { name: `TLS ${randomBytes(3).toString('hex')}`, ownerEmail: 'tls@example.com' })).token
  })

  after(async () => {
    await app?.close()
    await ctx?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('TLS 1.2 and TLS 1.3 clients are served, with HSTS', async () => {
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const r = await hello(`${url}/healthz`, certs.ca, v, v)
      assert.equal(r.error, undefined, `${v}: ${r.error}`)
      assert.equal(r.status, 200, v)
      assert.equal(r.protocol, v)
      assert.match(String(r.headers!['strict-transport-security']), /max-age=(\d{8,}|1[5-9]\d{6}); includeSubDomains; preload/)
    }
  })

  test('links the server issues are https:// without COFFER_PUBLIC_URL (the server speaks TLS itself)', () => {
    assert.match(ctx.config.auth.publicUrl, /^https:\/\/127\.0\.0\.1:\d+$/)
    assert.match(linkUrl(ctx.config.auth.publicUrl, 'reset', 'a-token'), /^https:\/\/127\.0\.0\.1:\d+\/reset-password\?token=a-token$/)
  })

  test('a client that speaks at most TLS 1.1 (or 1.0) is refused by the server', async () => {
    // @NOTE the client's own OpenSSL would refuse TLS < 1.2 at its default security level;
    // SECLEVEL=0 lets it offer them, so what fails here is the server's minimum.
    for (const v of ['TLSv1.1', 'TLSv1'] as const) {
      const r = await hello(`${url}/healthz`, certs.ca, 'TLSv1', v, 'DEFAULT:@SECLEVEL=0')
      assert.equal(r.status, undefined, `${v} must not get an answer`)
      assert.match(r.error ?? '', /protocol version|unsupported protocol|ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION/i, `${v}: ${r.error}`)
    }
  })

  test('plain HTTP to the TLS port gets no API answer', async () => {
    const plain = url.replace('https://', 'http://')
    const r = await fetch(`${plain}/healthz`).then(
      (res) => res.status,
      (e: Error) => e.message,
    )
    assert.notEqual(r, 200)
  })

  test('the client verifies the server: with the private CA it works, without it the connection is refused', async () => {
    const me = await new CofferClient({ url, token, ca: readCa(certs.ca) }).me()
    assert.equal(me.user?.email, 'tls@example.com')
    await assert.rejects(
      new CofferClient({ url, token }).me(),
      (e: Error & { code?: string }) => e.code === 'ERR_CONNECTION' && /UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED/.test(e.message),
    )
  })

  test('the CLI speaks https:// and trusts COFFER_CA_CERT', {
    skip: existsSync(join(ROOT, 'dist', 'cli.js')) ? false : 'dist/cli.js missing: npm run build',
  }, async () => {
    const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, COFFER_URL: url, COFFER_TOKEN: token }
    // @NOTE asynchronously: the server answering the CLI runs in this process.
    const ok = await cli(['whoami'], { ...base, COFFER_CA_CERT: certs.ca })
    assert.equal(ok.status, 0, ok.stderr)
    assert.equal(ok.stdout.trim(), 'tls@example.com')
    const untrusted = await cli(['whoami'], base)
    assert.notEqual(untrusted.status, 0)
    assert.match(untrusted.stderr, /Cannot reach the Coffer server/)
    const missing = await cli(['whoami'], { ...base, COFFER_CA_CERT: join(dir, 'nope.pem') })
    assert.notEqual(missing.status, 0)
    assert.match(missing.stderr, /COFFER_CA_CERT/)
    for (const r of [ok, untrusted, missing]) assert.ok(!(r.stdout + r.stderr).includes(token), 'the token is never printed')
  })

  test('bad TLS settings stop start-up with ERR_CONFIG naming the setting', () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['certificate file missing', { COFFER_TLS_CERT: join(dir, 'missing.pem'), COFFER_TLS_KEY: certs.key }, 'COFFER_TLS_CERT'],
      ['key file missing', { COFFER_TLS_CERT: certs.cert, COFFER_TLS_KEY: join(dir, 'missing.key') }, 'COFFER_TLS_KEY'],
      ['certificate is not PEM', { COFFER_TLS_CERT: certs.key, COFFER_TLS_KEY: certs.key }, 'COFFER_TLS_CERT'],
      ['key of another certificate', { COFFER_TLS_CERT: certs.cert, COFFER_TLS_KEY: certs.otherKey }, 'COFFER_TLS_KEY'],
      ['a directory as the certificate', { COFFER_TLS_CERT: dir, COFFER_TLS_KEY: certs.key }, 'COFFER_TLS_CERT'],
    ]
    for (const [label, env, setting] of cases) {
      assert.throws(
        () => loadTls(buildConfig(readEnv({ COFFER_DATA_DIR: dir, ...env })).tls),
        (e: unknown) => e instanceof ConfigError && e.code === 'ERR_CONFIG' && e.setting === setting,
        label,
      )
    }
    assert.throws(
      () => buildConfig(readEnv({ COFFER_TLS_CERT: certs.cert })),
      (e: unknown) => e instanceof ConfigError && e.setting === 'COFFER_TLS_KEY',
    )
    assert.throws(
      () => buildConfig(readEnv({ COFFER_TLS_KEY: certs.key })),
      (e: unknown) => e instanceof ConfigError && e.setting === 'COFFER_TLS_CERT',
    )
  })

  test('`coffer server` with an unreadable certificate exits before listening, naming the setting', {
    skip: existsSync(join(ROOT, 'dist', 'cli.js')) ? false : 'dist/cli.js missing: npm run build',
  }, () => {
    const r = spawnSync(process.execPath, [BIN, 'server', '--data-dir', join(dir, 'data2'), '--port', '0'], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        COFFER_TLS_CERT: join(dir, 'missing.pem'),
        COFFER_TLS_KEY: certs.key,
        COFFER_LOG_LEVEL: 'warn',
      },
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /COFFER_TLS_CERT: cannot read .*missing\.pem \(no such file\)/)
    assert.doesNotMatch(r.stderr, /listening/)
  })
})
