import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

// What `coffer audit verify` remembers between runs, per server and workspace: the audit
// public key it first saw (pinned) and the newest checkpoint it verified, so that the next
// run can demand a consistency proof and catch a rewritten history. Nothing here is secret.

export interface SeenCheckpoint {
  publicKey: string
  treeSize: number
  rootHash: string
  seenAt: string
}

function stateFile(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state')
  return join(base, 'coffer', 'audit-checkpoints.json')
}

function readAll(): Record<string, SeenCheckpoint> {
  try {
    return JSON.parse(readFileSync(stateFile(), 'utf8')) as Record<string, SeenCheckpoint>
  } catch {
    return {}
  }
}

/** The checkpoint seen last for this server and workspace, if any. */
export function loadSeen(url: string, workspaceId: string): SeenCheckpoint | undefined {
  return readAll()[`${url} ${workspaceId}`]
}

/** Records a verified checkpoint (written atomically). */
export function saveSeen(url: string, workspaceId: string, seen: SeenCheckpoint): string {
  const file = stateFile()
  const all = readAll()
  all[`${url} ${workspaceId}`] = seen
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, file)
  return file
}
