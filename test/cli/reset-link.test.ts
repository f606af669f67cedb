// `coffer reset-link EMAIL` on the server host: the way back into the browser for an Owner
// whose one-hour setup link ran out while mail is off. The printed link sets a password once,
// the Owner then signs in, the link does not work twice, the audit log records who issued it,
// and an unknown account gets a clear error without a link.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, request, startServer, stopChild } from '../helpers/child-server.js'

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    c.on('exit', (status) => resolve({ status, stdout, stderr }))
  })
}

const dir = mkdtempSync(join(tmpdir(), 'coffer-reset-link-'))
after(() => rmSync(dir, { recursive: true, force: true }))

test('an operator prints a one-time password link for an Owner; it works once and is audited', { timeout: 60_000 }, async () => {
  ensureBuilt()
  const env = childEnv({ COFFER_LOG_LEVEL: 'warn' })
  const init = await run(['init', '--data-dir', dir, '--email', 'Boss@Example.com', '--json'], env)
  assert.equal(init.status, 0, init.stderr)
  const { token, workspace } = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }

  const missing = await run(['reset-link', 'nobody@example.com', '--data-dir', dir], env)
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /No account nobody@example\.com/)
  assert.equal(missing.stdout, '', 'no link for an unknown account')

  const issued = await run(['reset-link', 'boss@example.com', '--data-dir', dir, '--json'], env)
  assert.equal(issued.status, 0, issued.stderr)
  const { url } = JSON.parse(issued.stdout) as { url: string }
  const linkToken = new URL(url).searchParams.get('token')!
  assert.match(url, /\/reset-password\?token=/)

  const { child, url: base } = await startServer(['--data-dir', dir], env)
  try {
    const password = 'a long and fresh passphrase 7'
    const reset = await request(base, '', 'POST', '/v1/auth/password/reset', { token: linkToken, password })
    assert.equal(reset.status, 200, JSON.stringify(reset.body))
    const again = await request(base, '', 'POST', '/v1/auth/password/reset', { token: linkToken, password })
    assert.equal(again.status, 400)
    assert.equal(again.body.error.code, 'ERR_INVALID_LINK')
    const signIn = await request(base, '', 'POST', '/v1/auth/password/sign-in', { email: 'boss@example.com', password })
    assert.equal(signIn.status, 200, JSON.stringify(signIn.body))
    const entries = await request(base, token, 'GET', `/v1/workspaces/${workspace.slug}/audit/entries?limit=100`)
    assert.equal(entries.status, 200)
    const issuedEntry = (entries.body.entries as Array<{ action: string; actor: { type: string; id: string } }>).find(
      (e) => e.action === 'auth.link-issued' && e.actor.id === 'operator',
    )
    assert.ok(issuedEntry, 'the audit log records the operator issuing the link')
  } finally {
    await stopChild(child)
  }
})
