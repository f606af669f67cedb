import type { CofferClient, KeyJob } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'

// Data-key commands, through the API. The root-key ones (init-hsm, migrate, rotate-root) run
// on the server host: src/cli/host/root-keys.ts.

type ScopeOpts = ScopeOptions & { json?: boolean }

/** A one-line progress bar on a terminal; plain lines (at most every 2 s) otherwise. */
function progress(job: KeyJob, last: { at: number }): void {
  const pct = job.total ? Math.floor((job.done / job.total) * 100) : 100
  const line = `reseal ${job.state}: ${job.done.toLocaleString('en')} of ${job.total.toLocaleString('en')} versions (${pct}%)`
  if (process.stderr.isTTY) {
    const width = 30
    const filled = Math.round((pct / 100) * width)
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}   `)
    return
  }
  if (Date.now() - last.at >= 2000 || job.state !== 'running') {
    info(line)
    last.at = Date.now()
  }
}

/** Polls a reseal job until it ends, drawing progress; returns the final job. */
async function follow(client: CofferClient, ws: string, job: KeyJob): Promise<KeyJob> {
  const last = { at: 0 }
  progress(job, last)
  while (job.state === 'running') {
    await new Promise((r) => setTimeout(r, 250))
    job = await client.keyJob(ws, job.id)
    progress(job, last)
  }
  if (process.stderr.isTTY) process.stderr.write('\n')
  return job
}

/**
 * `coffer keys rotate`: a new data-key version of the environment becomes primary at once;
 * the server reseals older versions in the background. With --wait, follows the job with a
 * progress bar until the old key version is destroyed.
 */
export async function keysRotate(opts: ScopeOpts & { wait?: boolean }): Promise<void> {
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const r = await client.rotateDataKey(scope)
  if (!opts.json)
    info(
      `Data key of ${scope.project}/${scope.environment} rotated: version ${r.key.version} is primary (was ${r.key.previousVersion}); ${r.job.total.toLocaleString('en')} versions to reseal (job ${r.job.id}).`,
    )
  let job = r.job
  if (opts.wait) {
    job = await follow(client, scope.workspace, job)
    if (job.state === 'failed')
      throw new ExitError(`The reseal stopped: ${job.error ?? 'unknown error'}. Every key is kept; see the audit log.`)
    if (!opts.json) info(`Reseal done; the old key version is destroyed.`)
  }
  if (opts.json) printJson({ key: r.key, job })
}

/** `coffer keys status`: the environment's key versions and latest reseal jobs. */
export async function keysStatus(opts: ScopeOpts): Promise<void> {
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const s = await client.dataKeyStatus(scope)
  if (opts.json) return printJson(s)
  printTable(
    ['VERSION', 'STATE', 'ENCRYPTIONS', 'ROOT KEY', 'CREATED'],
    s.versions.map((v) => [v.version, v.state, v.encryptions, v.rootKeyId, v.createdAt]),
  )
  if (s.jobs.length) {
    info('')
    printTable(
      ['JOB', 'STATE', 'REASON', 'PROGRESS', 'UPDATED'],
      s.jobs.map((j) => [j.id, j.state, j.reason, `${j.done}/${j.total}`, j.updatedAt]),
    )
  }
}
