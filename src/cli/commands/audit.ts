import { ChainVerifier } from '../../audit/verify.js'
import { info, printJson } from '../output.js'
import { ExitError } from '../exit-error.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'

/**
 * `coffer audit verify`: downloads the workspace's audit entries and recomputes the hash
 * chain on this machine — it does not take the server's word — naming the first bad entry.
 */
export async function auditVerify(opts: ScopeOptions & { json?: boolean }): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const v = new ChainVerifier()
  for await (const e of client.allAuditEntries(ws)) {
    if (!v.push({ ...e, prevHash: Buffer.from(e.prevHash, 'hex'), hash: Buffer.from(e.hash, 'hex') })) break
  }
  const r = v.result()
  if (opts.json) printJson(r)
  if (!r.ok) {
    const bad = r.firstBad!
    throw new ExitError(`Audit chain BROKEN at entry ${bad.seq} (${bad.id}): ${bad.reason}. ${r.checked - 1} entries before it verify.`, { exitCode: 2, code: 'ERR_AUDIT_CHAIN_BROKEN' })
  }
  if (!opts.json) info(`Audit chain OK: ${r.checked} entries of ${ws} verify; head ${r.head}.`)
}
