// The scheduled audit jobs: checkpoints are signed as the log grows, and the periodic
// verification turns coffer_audit_integrity_ok to 0 and logs the entry when the log breaks.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { sql } from 'kysely'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bootstrapWorkspace, createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { api } from '../helpers/harness.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await sleep(100)
  }
  assert.fail('condition not reached in time')
}

test('scheduled checkpoints and verification raise the integrity metric on a break', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'coffer-jobs-'))
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk))
      cb()
    },
  })
  const env = readEnv({ COFFER_DATA_DIR: dataDir, COFFER_CHECKPOINT_INTERVAL: '1', COFFER_AUDIT_VERIFY_INTERVAL: '1' })
  const ctx = await createContext(buildConfig(env), buildSecrets(env))
  const app = await buildApp(ctx, { logger: { level: 'error', stream } })
  try {
    const ws = await bootstrapWorkspace(ctx, { name: 'Jobs', ownerEmail: 'jobs@example.com' })
    await app.ready()
    const c = api(app, ws.token)
    const W = `/v1/workspaces/${ws.workspace.slug}`
    assert.equal((await c.post(`${W}/projects`, { name: 'App' })).status, 201)
    for (const k of ['A', 'B', 'C'])
      assert.equal((await c.put(`${W}/projects/app/environments/development/secrets/${k}`, { value: 'x' })).status, 200)

    // A checkpoint covering the 6 entries appears without anyone asking.
    await waitFor(async () => (await c.get(`${W}/audit/checkpoint`)).body.checkpoint?.treeSize === 6)
    const metric = async () => {
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
      return /^coffer_audit_integrity_ok (\d)$/m.exec(text)?.[1]
    }
    await waitFor(async () =>
      /coffer_audit_last_verification_timestamp_seconds \d+/.test((await app.inject({ method: 'GET', url: '/metrics' })).body),
    )
    assert.equal(await metric(), '1')

    // An attacker with database access rewrites entry 4.
    await sql.raw('DROP TRIGGER audit_entries_no_update').execute(ctx.store.db)
    await ctx.store.db
      .updateTable('audit_entries')
      .set({ action: 'secret.reveal' })
      .where('workspace_id', '=', ws.workspace.id)
      .where('seq', '=', 4)
      .execute()
    await waitFor(async () => (await metric()) === '0')
    const log = lines
      .map((l) => JSON.parse(l) as { msg: string; seq?: number; workspace?: string })
      .find((l) => l.msg === 'AUDIT LOG INTEGRITY BROKEN')
    assert.ok(log, 'an error is logged')
    assert.equal(log.seq, 4)
    assert.equal(log.workspace, ws.workspace.id)
    assert.match(
      (await app.inject({ method: 'GET', url: '/metrics' })).body,
      new RegExp(`coffer_audit_workspace_integrity_ok\\{workspace="${ws.workspace.id}"\\} 0`),
    )
  } finally {
    await app.close()
    await ctx.close()
    await rm(dataDir, { recursive: true, force: true })
  }
})
