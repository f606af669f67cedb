// `coffer login` end to end: a real `coffer server`, the built CLI inside a private D-Bus
// session with gnome-keyring's Secret Service, and Debian's Chromium (playwright-core) as the
// person's browser. The CLI prints the URL; Chromium signs in and approves; the CLI keeps the
// token in the keyring; `coffer whoami` works with it; `coffer logout` revokes it on the server
// and removes it. The same with `coffer login --device`. Needs the Debian packages chromium,
// gnome-keyring and dbus; without them this suite fails (it never skips).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import Sqlite from 'better-sqlite3'
import { chromium, type BrowserContext } from 'playwright-core'
import { hashPassword } from '../../src/identity/passwords.js'
import { BIN, childEnv, ensureBuilt, request, startServer, stopChild } from '../helpers/child-server.js'
import { filesUnder } from '../helpers/files.js'

const CHROMIUM = '/usr/bin/chromium'
const EMAIL = 'cli-person@example.com'
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-long-enough`

/** Runs `script` in a fresh D-Bus session with an unlocked gnome-keyring; `output` grows as it prints. */
function inKeyringSession(
  home: string,
  script: string,
  extraEnv: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (
      v === undefined ||
      k.startsWith('COFFER_') ||
      k.startsWith('DBUS_') ||
      k.startsWith('XDG_') ||
      k === 'NODE_TEST_CONTEXT' ||
      k === 'BROWSER'
    )
      continue
    env[k] = v
  }
  Object.assign(env, {
    HOME: home,
    XDG_RUNTIME_DIR: join(home, 'run'),
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    ...extraEnv,
  })
  const full = `echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n${script}`
  const child = spawn('dbus-run-session', ['--', 'sh', '-c', full], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, output: () => out, exited }
}

async function waitFor<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('coffer login in the browser and by device code (Chromium, gnome-keyring)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-login-browser-'))
  let server: ChildProcess | undefined
  let url = ''
  let ownerToken = ''
  let workspace = ''
  let browser: BrowserContext | undefined
  const c = `"${process.execPath}" "${BIN}"`

  before(async () => {
    ensureBuilt()
    for (const tool of ['dbus-run-session', 'gnome-keyring-daemon']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} is missing: apt-get install -y gnome-keyring dbus`)
    }
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`)
    const data = join(work, 'data')
    const env = childEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_CHECKPOINT_INTERVAL: '0', COFFER_AUDIT_VERIFY_INTERVAL: '0' })
    const init = spawnSync(process.execPath, [BIN, 'init', '--data-dir', data, '--email', EMAIL, '--json'], { encoding: 'utf8', env })
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    ownerToken = j.token
    workspace = j.workspace.slug
    // The person gets a password (as if set through a reset link) before the server starts.
    const db = new Sqlite(join(data, 'coffer.db'))
    db.prepare('UPDATE users SET password_hash = ?, email_verified_at = ? WHERE email = ?').run(
      await hashPassword(PASSWORD),
      new Date().toISOString(),
      EMAIL,
    )
    db.close()
    const s = await startServer(['--data-dir', data], env)
    server = s.child
    url = s.url
    browser = await chromium.launchPersistentContext(join(work, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    // Sign in as a person would; the session cookie lands in the browser's cookie jar.
    const r = await browser.request.post(`${url}/v1/auth/password/sign-in`, { data: { email: EMAIL, password: PASSWORD } })
    assert.equal(r.status(), 200, await r.text())
    assert.ok(
      (await browser.cookies(url)).some((k) => k.name === 'coffer_session' && k.httpOnly),
      'signed in: HttpOnly session cookie',
    )
  })

  after(async () => {
    await browser?.close()
    if (server) await stopChild(server)
    rmSync(work, { recursive: true, force: true })
  })

  async function cliTokens(): Promise<Array<{ name: string; revokedAt: string | null }>> {
    const r = await request(url, ownerToken, 'GET', `/v1/workspaces/${workspace}/tokens`)
    assert.equal(r.status, 200)
    return (r.body.tokens as Array<{ name: string; revokedAt: string | null }>).filter((t) => t.name.startsWith('cli: '))
  }

  function checkSession(home: string, out: string, label: string): void {
    assert.match(out, /login=0/, `${label}: ${out}`)
    assert.match(out, new RegExp(`${EMAIL.replace('.', '\\.')}\\nwhoami=0`), `${label}: whoami with the kept token`)
    assert.match(out, /revoked on the server and removed from the OS credential store/)
    assert.match(out, /logout=0/)
    assert.match(out, /Not logged in/)
    assert.match(out, /whoami_after=1/)
    assert.ok(!/coffer_(pat|cli)_/.test(out), 'no token is ever printed')
    for (const f of filesUnder(home)) assert.ok(!readFileSync(f).includes(Buffer.from('coffer_cli_')), `${f} holds the CLI token in clear`)
  }

  const script = (loginArgs: string) =>
    [
      `${c} login --url "$COFFER_TEST_URL" ${loginArgs} 2>&1; echo "login=$?"`,
      `${c} whoami 2>/dev/null; echo "whoami=$?"`,
      `${c} logout 2>&1; echo "logout=$?"`,
      `${c} whoami 2>&1; echo "whoami_after=$?"`,
    ].join('\n')

  test('browser flow: the CLI prints the URL, Chromium approves, the keyring keeps the token, whoami works, logout revokes it', {
    timeout: 120_000,
  }, async () => {
    const home = join(work, 'home-browser')
    mkdirSync(join(home, 'run'), { recursive: true, mode: 0o700 })
    const before = (await cliTokens()).length
    const run = inKeyringSession(home, script('--no-browser'), { COFFER_TEST_URL: url })
    const loginUrl = await waitFor('the login URL', () => /(http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+)/.exec(run.output())?.[1])
    const page = await browser!.newPage()
    await page.goto(loginUrl)
    assert.match((await page.textContent('body')) ?? '', new RegExp(`act as ${EMAIL.replace('.', '\\.')}`))
    await page.click('button[value=approve]')
    await page.waitForURL(/\/cli\/done\?result=approved/, { timeout: 10_000 }).catch(async (e: Error) => {
      throw new Error(`${e.message}; at ${page.url()}: ${(await page.textContent('body'))?.slice(0, 300)}; CLI: ${run.output()}`)
    })
    assert.match((await page.textContent('body')) ?? '', /The CLI is signed in/)
    await page.close()
    assert.equal(await run.exited, 0, run.output())
    checkSession(home, run.output(), 'browser')
    const tokens = await cliTokens()
    assert.equal(tokens.length, before + 1, 'one CLI token was made')
    assert.ok(tokens[0]!.revokedAt, 'logout revoked it on the server')
  })

  test('device flow: the CLI shows a code, Chromium enters and approves it, the keyring keeps the token', {
    timeout: 120_000,
  }, async () => {
    const home = join(work, 'home-device')
    mkdirSync(join(home, 'run'), { recursive: true, mode: 0o700 })
    const run = inKeyringSession(home, script('--device'), { COFFER_TEST_URL: url })
    const userCode = await waitFor('the user code', () => /\n\s+([B-Z]{4}-[B-Z]{4})\n/.exec(run.output())?.[1])
    assert.ok(run.output().includes(`${url}/cli/device`), 'the verification address is printed')
    const page = await browser!.newPage()
    await page.goto(`${url}/cli/device`)
    await page.fill('input[name=code]', userCode.toLowerCase())
    await page.click('button[type=submit]')
    await page.click('button[value=approve]')
    await page.waitForURL(/\/cli\/done\?result=approved/)
    await page.close()
    assert.equal(await run.exited, 0, run.output())
    checkSession(home, run.output(), 'device')
  })

  test('a callback with the wrong state is ignored; denying in the browser ends the CLI with ERR_ACCESS_DENIED', {
    timeout: 120_000,
  }, async () => {
    const home = join(work, 'home-deny')
    mkdirSync(join(home, 'run'), { recursive: true, mode: 0o700 })
    const run = inKeyringSession(home, `${c} login --url "$COFFER_TEST_URL" --no-browser 2>&1; echo "login=$?"`, { COFFER_TEST_URL: url })
    const loginUrl = await waitFor('the login URL', () => /(http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+)/.exec(run.output())?.[1])
    const redirect = new URL(new URL(loginUrl).searchParams.get('redirect_uri')!)
    // Another local process races to the loopback with a code and a guessed state.
    const forged = await fetch(`${redirect}?code=${'A'.repeat(43)}&state=guessed-state-value`, { redirect: 'manual' })
    assert.equal(forged.status, 400)
    await waitFor('the CLI to ignore it', () => (run.output().includes('ignored a login callback with the wrong state') ? true : undefined))
    const page = await browser!.newPage()
    await page.goto(loginUrl)
    await page.click('button[value=deny]')
    await page.waitForURL(/\/cli\/done\?result=denied/)
    await page.close()
    await run.exited
    assert.match(run.output(), /denied in the browser/)
    assert.match(run.output(), /login=1/)
  })

  test('with no OS credential store, login --export completes the browser flow and hands the token to the shell only', {
    timeout: 120_000,
  }, async () => {
    const home = join(work, 'home-export')
    mkdirSync(home, { recursive: true })
    const env = { PATH: process.env.PATH, HOME: home, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' }
    const child = spawn(process.execPath, [BIN, 'login', '--url', url, '--no-browser', '--export'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const exited = new Promise<number | null>((r) => child.once('exit', r))
    const loginUrl = await waitFor('the login URL', () => /(http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+)/.exec(stderr)?.[1])
    const page = await browser!.newPage()
    await page.goto(loginUrl)
    await page.click('button[value=approve]')
    await page.waitForURL(/\/cli\/done\?result=approved/, { timeout: 10_000 })
    await page.close()
    assert.equal(await exited, 0, stderr)
    assert.match(stdout, /^export COFFER_URL=http:\/\/127\.0\.0\.1:\d+\nexport COFFER_TOKEN=coffer_cli_\S+\n$/)
    assert.ok(!stderr.includes('coffer_cli_'), 'the token is on stdout only')
    const shell = spawnSync('sh', ['-c', `eval "$(cat)"; ${c} whoami`], { env, input: stdout, encoding: 'utf8' })
    assert.equal(shell.status, 0, shell.stderr)
    assert.equal(shell.stdout.trim(), EMAIL)
    assert.deepEqual(filesUnder(home), [], 'nothing was written under HOME')
  })

  test('with no OS credential store, login says so, points to COFFER_TOKEN, and makes no token', () => {
    const before = spawnSync(process.execPath, [BIN, 'login', '--url', url, '--no-browser'], {
      env: { PATH: process.env.PATH, HOME: join(work, 'home-none') },
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(before.status, 1)
    assert.match(before.stderr, /no OS credential store/)
    assert.match(before.stderr, /COFFER_TOKEN/)
    assert.doesNotMatch(before.stderr, /cli\/login\?/, 'it stops before any login starts')
  })
})
