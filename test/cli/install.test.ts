// Installing Coffer as a user would: `npm install -g` of the checkout and of `npm pack`'s
// tarball, into a temporary prefix (nothing global changes), puts a working `coffer` on PATH;
// the server's start-up hint names a command that works exactly as printed, from the checkout
// and from an install. The tarball install fetches every dependency (from npm's cache when it
// holds them) and compiles the native ones: it takes minutes.
import { spawn, spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { after, describe, test } from 'node:test'
import { ensureBuilt, ROOT, stopChild } from '../helpers/child-server.js'

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const work = mkdtempSync(join(tmpdir(), 'coffer-install-'))

/** A clean environment whose PATH starts with `bin` (the prefix's), with no credential store. */
function envWith(bin: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && !k.startsWith('npm_')) e[k] = v
  const path = (process.env.PATH ?? '').split(delimiter).filter((d) => !existsSync(join(d, 'coffer')))
  return {
    ...e,
    PATH: [...(bin ? [bin] : []), ...path].join(delimiter),
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
    NO_COLOR: '1',
    ...extra,
  }
}

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: envWith(undefined), timeout: 900_000 })
  assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.stderr.slice(-2000)}`)
  return `${r.stdout}\n${r.stderr}`
}

/** Starts `coffer server` through `command` (argv) in `cwd`; resolves with its URL and the `Get in:` hint. */
async function serverHint(
  command: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; token: string; hint: string; stop: () => Promise<void> }> {
  const child = spawn(command[0]!, [...command.slice(1), 'server', '--port', '0', '--data-dir', mkdtempSync(join(work, 'data-'))], {
    cwd,
    env: { ...env, COFFER_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start-up hint: ${out}`)), 60_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const hint = /^Get in: {2}(.*)$/m.exec(out)?.[1]
      const token = /^ {4}(coffer_pat_\S+)$/m.exec(out)?.[1]
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1]
      if (hint && token && url) {
        clearTimeout(t)
        resolve({ url, token, hint, stop: () => stopChild(child) })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${out}`)))
  })
}

/**
 * Runs the `Get in:` line's two commands as printed, the token filled in, in a shell with no
 * credential store: `… login --url U --token T` runs and checks the token (it says there is no
 * store to keep it in), and `export COFFER_URL=U COFFER_TOKEN=T` then `… whoami` signs in.
 */
function checkHint(line: string, token: string, cwd: string, env: NodeJS.ProcessEnv): void {
  const m = /^(.*) login --url (\S+) --token <token> +\(or: (export COFFER_URL=\S+ COFFER_TOKEN=<token>)\)$/.exec(line)
  assert.ok(m, `the hint reads: ${line}`)
  const [, command, , exportLine] = m
  const login = spawnSync('sh', ['-c', `${command} login --url ${m[2]} --token ${token}`], { cwd, env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(login.status, 1, login.stderr)
  assert.match(login.stderr, /The token works \(owner@localhost in default\).*ERR_NO_CREDENTIAL_STORE/)
  const r = spawnSync('sh', ['-c', `${exportLine!.replace('<token>', token)} && ${command} whoami`], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'owner@localhost')
}

describe('installing coffer', () => {
  after(() => rmSync(work, { recursive: true, force: true }))

  test('from the checkout: npm start’s hint works as printed; npm install -g <checkout> puts coffer on PATH', async () => {
    ensureBuilt()
    const fromCheckout = await serverHint([process.execPath, 'bin/coffer.js'], ROOT, envWith(undefined))
    try {
      assert.match(fromCheckout.hint, /^node bin\/coffer\.js login --url http:\/\/127\.0\.0\.1:\d+ --token <token> /)
      checkHint(fromCheckout.hint, fromCheckout.token, ROOT, envWith(undefined))
    } finally {
      await fromCheckout.stop()
    }

    const prefix = join(work, 'global-checkout')
    npm(['install', '-g', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund', ROOT], work)
    const bin = join(prefix, 'bin')
    assert.equal(realpathSync(join(bin, 'coffer')), join(realpathSync(ROOT), 'bin', 'coffer.js'))
    const env = envWith(bin)
    const version = spawnSync('coffer', ['--version'], { env, cwd: work, encoding: 'utf8' })
    assert.equal(version.stdout.trim(), VERSION, version.stderr)
    const installed = await serverHint(['coffer'], work, env)
    try {
      assert.match(installed.hint, /^coffer login --url /, 'on PATH, the hint says coffer')
      checkHint(installed.hint, installed.token, work, env)
    } finally {
      await installed.stop()
    }
  })

  test('from npm pack’s tarball: npm install -g puts a working coffer on PATH, with no engine warning', {
    timeout: 1_200_000,
  }, async () => {
    ensureBuilt()
    const packDir = mkdtempSync(join(work, 'pack-'))
    npm(['pack', '--pack-destination', packDir], ROOT)
    const tarball = join(packDir, `coffer-${VERSION}.tgz`)
    const listing = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout
    for (const f of ['package/bin/coffer.js', 'package/dist/cli.js', 'package/dist/run.cjs', 'package/dist/web/index.html'])
      assert.ok(listing.includes(f), `${f} is in the tarball`)
    assert.ok(!listing.includes('package/src/'), 'the sources stay out')

    const prefix = join(work, 'global-tarball')
    const log = npm(['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], work)
    assert.ok(!log.includes('EBADENGINE'), `no dependency refuses this Node:\n${log}`)
    const env = envWith(join(prefix, 'bin'))
    assert.equal(spawnSync('coffer', ['--version'], { env, cwd: work, encoding: 'utf8' }).stdout.trim(), VERSION)
    const installed = await serverHint(['coffer'], work, env)
    try {
      assert.match(installed.hint, /^coffer login --url /)
      checkHint(installed.hint, installed.token, work, env)
    } finally {
      await installed.stop()
    }
  })
})
