// "Rotate an environment's key while `coffer run` loops against it without a single
// failure": the built CLI against a real server. `coffer run` starts again and again while
// `coffer keys rotate --wait` rotates the key and follows the reseal to the end; every run
// sees the right value, the old key version is gone, and `coffer keys status` says so.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, request, startServer, stopChild } from '../helpers/child-server.js'

describe('coffer keys rotate while coffer run loops (SQLite, real server)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-rotate-cli-'))
  const dataDir = join(work, 'data')
  const base = childEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_RESEAL_BATCH: '50' })
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  let token = ''
  let ws = ''
  const apiKey = `k-${randomBytes(8).toString('hex')}`
  const cliEnv = () => ({ ...base, COFFER_URL: server!.url, COFFER_TOKEN: token })

  before(async () => {
    ensureBuilt()
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'ops@example.com', '--workspace', 'Rot', '--json'],
      { env: base, encoding: 'utf8' },
    )
    assert.equal(init.status, 0, init.stderr)
    ;({
      token,
      workspace: { slug: ws },
    } = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } })
    server = await startServer(['--data-dir', dataDir], base)
    assert.equal((await request(server.url, token, 'POST', `/v1/workspaces/${ws}/projects`, { name: 'Web' })).status, 201)
    const E = `/v1/workspaces/${ws}/projects/web/environments/production`
    for (let b = 0; b < 4; b++) {
      const secrets = Array.from({ length: 500 }, (_, i) => ({ key: `FILL_${b}_${i}`, value: randomBytes(12).toString('hex') }))
      assert.equal((await request(server.url, token, 'POST', `${E}/secrets`, { secrets })).status, 200)
    }
    assert.equal((await request(server.url, token, 'PUT', `${E}/secrets/API_KEY`, { value: apiKey })).status, 200)
  })

  after(async () => {
    if (server) await stopChild(server.child)
    rmSync(work, { recursive: true, force: true })
  })

  test('no run fails and each sees the value; the reseal finishes; the old key is destroyed', async () => {
    let stop = false
    let runs = 0
    const failures: string[] = []
    const loop = (async () => {
      while (!stop) {
        const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const c = spawn(
            process.execPath,
            [BIN, 'run', '--workspace', ws, '--project', 'web', '--env', 'production', '--', 'sh', '-c', 'printf %s "$API_KEY"'],
            { env: cliEnv() },
          )
          let out = ''
          let err = ''
          c.stdout.on('data', (d: Buffer) => {
            out += d
          })
          c.stderr.on('data', (d: Buffer) => {
            err += d
          })
          c.on('close', (code) => resolve({ code, out, err }))
        })
        runs++
        if (r.code !== 0 || r.out !== apiKey) failures.push(`exit ${r.code}: ${r.err.slice(0, 200)}`)
      }
    })()
    await new Promise((r) => setTimeout(r, 300))
    const rot = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, 'keys', 'rotate', '--workspace', ws, '--project', 'web', '--env', 'production', '--wait'], {
        env: cliEnv(),
      })
      let out = ''
      let err = ''
      c.stdout.on('data', (d: Buffer) => {
        out += d
      })
      c.stderr.on('data', (d: Buffer) => {
        err += d
      })
      c.on('close', (code) => resolve({ code, out, err }))
    })
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await loop
    assert.equal(rot.code, 0, rot.err)
    assert.match(rot.err, /version 2 is primary \(was 1\)/)
    assert.match(rot.err, /reseal (running|done): [\d,]+ of 2,001 versions/, 'progress is reported')
    assert.match(rot.err, /Reseal done; the old key version is destroyed/)
    assert.ok(runs >= 3, `coffer run looped during the rotation (${runs} runs)`)
    assert.deepEqual(failures, [], `0 of ${runs} runs failed`)

    const st = spawnSync(
      process.execPath,
      [BIN, 'keys', 'status', '--workspace', ws, '--project', 'web', '--env', 'production', '--json'],
      { env: cliEnv(), encoding: 'utf8' },
    )
    assert.equal(st.status, 0, st.stderr)
    const status = JSON.parse(st.stdout) as {
      versions: Array<{ version: number; state: string; encryptions: number }>
      jobs: Array<{ state: string; done: number; total: number }>
    }
    assert.deepEqual(
      status.versions.map((v) => [v.version, v.state]),
      [[2, 'primary']],
    )
    // The reseal's 2,001, and each environment snapshot built under the new key (at most one per
    // `run`'s fetch: a reseal batch makes the snapshot stale, and the next fetch rebuilds it).
    const counted = status.versions[0]!.encryptions
    assert.ok(counted >= 2001 && counted <= 2001 + runs, `the reseal counted its encryptions under the new key (${counted}, ${runs} runs)`)
    assert.equal(status.jobs[0]!.state, 'done')
    assert.equal(status.jobs[0]!.done, 2001)
    assert.ok(!st.stdout.includes(apiKey) && !rot.err.includes(apiKey), 'no value is printed')
  })
})
